package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

// TestReadyzTellsClientsWhatTheyCanActOn: /readyz gives the client the
// reason a service is not ready in words it can act on, and the error
// underneath (driver text, addresses) only to the log.
func TestReadyzTellsClientsWhatTheyCanActOn(t *testing.T) {
	driver := errors.New("failed to connect to `user=gridmap database=gridmap`: 10.0.0.7:5432 (db.internal): dial error: connect: connection refused")
	tests := []struct {
		name   string
		ready  error
		status int
		reason string
		logged string
	}{
		{"ready", nil, http.StatusOK, "", ""},
		{"the database is unreachable",
			fmt.Errorf("%w: %w", gridmap.Errorf(gridmap.EUNAVAILABLE, "the database is unreachable"), driver),
			http.StatusServiceUnavailable, "the database is unreachable", "connection refused"},
		{"the lookup index is loading", gridmap.Errorf(gridmap.EUNAVAILABLE, "the lookup index is still loading"),
			http.StatusServiceUnavailable, "the lookup index is still loading", "the lookup index is still loading"},
		{"an error nobody classified says no more than that",
			fmt.Errorf("checking: %w", driver), http.StatusServiceUnavailable, "the service is not ready; its log says why", "10.0.0.7:5432"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			s := New(Config{}, Deps{Ready: func(context.Context) error { return tc.ready }}, slog.New(slog.NewTextHandler(&log, nil)))
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			var body struct{ Status, Reason string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%v: %s", err, rec.Body)
			}
			if rec.Code != tc.status || body.Reason != tc.reason {
				t.Errorf("%d %s, want %d with reason %q", rec.Code, rec.Body, tc.status, tc.reason)
			}
			for _, internal := range []string{"10.0.0.7", "db.internal", "dial", "user="} {
				if strings.Contains(rec.Body.String(), internal) {
					t.Errorf("the answer shows %q: %s", internal, rec.Body)
				}
			}
			if !strings.Contains(log.String(), tc.logged) {
				t.Errorf("the log lacks %q:\n%s", tc.logged, log.String())
			}
		})
	}
}
