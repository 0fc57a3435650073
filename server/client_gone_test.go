package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

// troubledLocator fails at longitude 1 with an error of its own and panics
// at longitude 2; elsewhere it answers as pointLocator does.
type troubledLocator struct{ pointLocator }

func (l troubledLocator) Lookup(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	switch q.Lon {
	case 1:
		return errors.New("the index's disk is on fire")
	case 2:
		panic("a lookup gone wrong")
	}
	return l.pointLocator.Lookup(ctx, q, dst)
}

// TestErrorsOfRequestsStillListening: a request whose client is still
// there is answered its error, never 499, although the server ends the
// request's deadline before its error is answered: an internal error is a
// 500 with a body and logged as an error, a panic too (in the request or
// in a batch's workers, streamed or in space order), an unknown route a
// 404, a wrong method a 405.
func TestErrorsOfRequestsStillListening(t *testing.T) {
	logs := &lockedBuffer{}
	loc := troubledLocator{newPointLocator()}
	s := New(Config{PublicRead: true}, Deps{Locator: loc}, slog.New(slog.NewJSONHandler(logs, nil)))
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	batch := func(n int, bad string) string {
		pts := make([]string, n)
		for i := range pts {
			pts[i] = "[120,30]"
		}
		pts[n/2] = bad
		return `{"layer":"demo","points":[` + strings.Join(pts, ",") + `]}`
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		says                     string
		logged                   bool // as an error
	}{
		{"a lookup failing", "GET", "/v1/lookup?lon=1&lat=30", "", 500, "internal error", true},
		{"a lookup panicking", "GET", "/v1/lookup?lon=2&lat=30", "", 500, "internal error", true},
		{"a streamed batch failing", "POST", "/v1/lookup", batch(100, "[1,30]"), 500, "internal error", true},
		{"a streamed batch panicking", "POST", "/v1/lookup", batch(100, "[2,30]"), 500, "internal error", true},
		{"a batch in space order panicking", "POST", "/v1/lookup", batch(defaultSpaceOrderFrom, "[2,30]"), 500, "internal error", true},
		{"an unknown route", "GET", "/v1/nope", "", 404, "no such endpoint", false},
		{"a wrong method", "DELETE", "/v1/lookup", "", 405, "Method Not Allowed", false},
	} {
		before := len(logs.String())
		r := do(t, c.method, hs.URL+c.path, c.body, noAuth...)
		if r.status != c.status || !strings.Contains(string(r.body), c.says) {
			t.Errorf("%s: %d %.200s, want %d saying %q", c.name, r.status, r.body, c.status, c.says)
		}
		logged := logs.String()[before:]
		if strings.Contains(logged, `"status":499`) || c.logged != strings.Contains(logged, `"level":"ERROR"`) {
			t.Errorf("%s: logged\n%s", c.name, logged)
		}
	}
}
