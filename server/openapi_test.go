package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPI reads /openapi.json as a client would (no credentials) and
// holds it to the routes the server registered and to the OpenAPI 3 schema.
func TestOpenAPI(t *testing.T) {
	ts := newTestServer(t, Config{})
	r := do(t, "GET", ts.url+"/openapi.json", "", noAuth...)
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != oasMediaTypeJSON {
		t.Errorf("Content-Type %q, want %q", ct, oasMediaTypeJSON)
	}

	t.Run("every /v1 route is documented", func(t *testing.T) {
		var doc struct {
			Paths map[string]map[string]json.RawMessage `json:"paths"`
		}
		r.json(t, &doc)
		documented := map[string]bool{}
		for path, item := range doc.Paths {
			for method := range item {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
		registered := map[string]bool{}
		for _, rt := range ts.echo.Routes() {
			if strings.HasPrefix(rt.Path, "/v1/") {
				registered[rt.Method+" "+oasPathOf(rt.Path)] = true
			}
		}
		var missing, extra []string
		for key := range registered {
			if !documented[key] {
				missing = append(missing, key)
			}
		}
		for key := range documented {
			if !registered[key] {
				extra = append(extra, key)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		for _, key := range missing {
			t.Errorf("%s is registered but not in /openapi.json: add it to v1Operations in server/openapi_v1.go", key)
		}
		for _, key := range extra {
			t.Errorf("%s is in /openapi.json but no such route is registered", key)
		}
	})

	t.Run("the document validates as OpenAPI 3", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(r.body)
		if err != nil {
			t.Fatalf("loading the document: %v", err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("the document is not valid OpenAPI 3: %v", err)
		}
	})

	t.Run("an unchanged document answers 304", func(t *testing.T) {
		etag := r.header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		if again := do(t, "GET", ts.url+"/openapi.json", "", "If-None-Match", etag); again.status != http.StatusNotModified {
			t.Errorf("If-None-Match with the ETag: %d, want 304", again.status)
		}
	})
}

// oasPathOf is an echo route path in OpenAPI's form: /v1/layers/{layer}.
func oasPathOf(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}
