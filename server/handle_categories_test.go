package server

import (
	"context"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestDepartmentWebhookSecret follows a department's write-only secret
// through a client that puts back what it read.
func TestDepartmentWebhookSecret(t *testing.T) {
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	path := ts.url + "/v1/departments/signed"
	stored := func(t *testing.T) string {
		t.Helper()
		var secret string
		if err := db.Pool.QueryRow(context.Background(), `SELECT webhook_secret FROM departments WHERE code = 'signed'`).Scan(&secret); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	readBack := func(t *testing.T) string {
		t.Helper()
		r := do(t, "GET", path, "")
		if r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		return string(r.body)
	}
	steps := []struct {
		name   string
		body   func(t *testing.T) string
		status int
		secret string
	}{
		{"created with a secret", func(*testing.T) string {
			return `{"name":"签名部门","webhook_url":"https://example.org/hook","webhook_secret":"s3cret"}`
		}, 201, "s3cret"},
		{"what GET returns, put back, keeps the secret", readBack, 200, "s3cret"},
		{"a body without the secret keeps it", func(*testing.T) string {
			return `{"name":"签名部门 (renamed)","webhook_url":"https://example.org/hook2"}`
		}, 200, "s3cret"},
		{"a new secret replaces it", func(*testing.T) string {
			return `{"name":"签名部门","webhook_url":"https://example.org/hook","webhook_secret":"n3w"}`
		}, 200, "n3w"},
		{"an empty secret removes it", func(*testing.T) string {
			return `{"name":"签名部门","webhook_url":"https://example.org/hook","webhook_secret":""}`
		}, 200, ""},
		{"put back after removal, none comes back", readBack, 200, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := do(t, "PUT", path, st.body(t))
			if r.status != st.status {
				t.Fatalf("PUT: %d %s, want %d", r.status, r.body, st.status)
			}
			if got := stored(t); got != st.secret {
				t.Errorf("stored secret %q, want %q", got, st.secret)
			}
			for what, body := range map[string]string{"PUT": string(r.body), "GET": readBack(t)} {
				if strings.Contains(body, "webhook_secret") {
					t.Errorf("%s answers the write-only secret: %s", what, body)
				}
			}
		})
	}
}
