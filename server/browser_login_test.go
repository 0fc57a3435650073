package server

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestLoginPage signs in through /login in a real browser and lands on the
// start page; then a page of another origin posts a form at the API with
// the session's cookie, and the write is refused.
func TestLoginPage(t *testing.T) {
	ts := newTestServer(t, Config{})
	user := "zhou.browser." + strconv.FormatInt(time.Now().UnixNano(), 36)
	addAccount(t, ts, gridmap.Account{Username: user, DisplayName: "周调度", Role: gridmap.RoleDispatcher}, "correct horse battery")
	// Another origin (another port of 127.0.0.1): its page submits a form
	// to our API as soon as it loads, as a hostile site would.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body>
<form id="f" method="POST" action="%s/v1/reports" enctype="text/plain">
<input name='{"external_id":"forged","category":"none","location":{"type":"Point","coordinates":[121,31]},"x":"' value='"}'>
</form><script>document.getElementById('f').submit()</script></body></html>`, html.EscapeString(ts.url))
	}))
	defer other.Close()
	runBrowser(t, "login.test.mjs", ts.url,
		"GRIDMAP_USER="+user, "GRIDMAP_PASSWORD=correct horse battery", "GRIDMAP_DISPLAY_NAME=周调度",
		"GRIDMAP_OTHER_ORIGIN_URL="+other.URL)
	var n int
	if err := pgtest.Shared(t).Pool.QueryRow(context.Background(), `SELECT count(*) FROM reports WHERE external_id = 'forged'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the forged form stored %d reports (%v)", n, err)
	}
}
