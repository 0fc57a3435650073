package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

// TestSlowBodiesAreTimedOut: a client that sends only part of its body
// before the server's read timeout is answered 408 request_timeout (with
// the request id), not a 500 nor a 400 about the half it sent, and
// nothing it asked for is done; clients sending whole bodies at the same
// time, on a pool of two connections, are answered as usual.
func TestSlowBodiesAreTimedOut(t *testing.T) {
	db := pgtest.NewDBWith(t, postgresSmallPool)
	ts := newTestServerOn(t, Config{}, db)
	hs := httptest.NewUnstartedServer(ts.Handler())
	hs.Config.ReadTimeout = time.Second
	hs.Start()
	defer hs.Close()
	addr := hs.Listener.Addr().String()

	layerBody := func(id string) string {
		return fmt.Sprintf(`{"name":"layer %s","kind":"comprehensive","levels":["district","street"]}`, id)
	}
	batch := `{"points":[` + strings.Repeat("[121.47,31.23],", 500) + `[121.47,31.23]]}`
	// half sends the request's head and half its body, then waits.
	half := func(method, path, body string) (*http.Response, []byte, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		defer conn.Close()
		if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			method, path, addr, ts.admin, len(body), body[:len(body)/2]); err != nil {
			return nil, nil, err
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}

	const each = 4
	var wg sync.WaitGroup
	errs := make(chan error, 4*each)
	for i := range each {
		wg.Add(3)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("slow%d", i)
			res, b, err := half("PUT", "/v1/layers/"+id, layerBody(id))
			errs <- timedOut("a layer's half body", res, b, err)
		}()
		go func() {
			defer wg.Done()
			res, b, err := half("POST", "/v1/lookup", batch)
			errs <- timedOut("a lookup batch's half body", res, b, err)
		}()
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("whole%d", i)
			if r := do(t, "PUT", hs.URL+"/v1/layers/"+id, layerBody(id), bearer(ts.admin)...); r.status/100 != 2 {
				errs <- fmt.Errorf("a whole layer's body: %d %s", r.status, r.body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range each {
		if r := do(t, "GET", hs.URL+fmt.Sprintf("/v1/layers/slow%d", i), "", bearer(ts.admin)...); r.status != 404 {
			t.Errorf("layer slow%d, whose body never all came: %d %s", i, r.status, r.body)
		}
		if r := do(t, "GET", hs.URL+fmt.Sprintf("/v1/layers/whole%d", i), "", bearer(ts.admin)...); r.status != 200 {
			t.Errorf("layer whole%d: %d %s", i, r.status, r.body)
		}
	}
}

// timedOut checks an answer to a request whose body stopped half way.
func timedOut(what string, res *http.Response, body []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	var e errorBody
	if jerr := json.Unmarshal(body, &e); jerr != nil || res.StatusCode != http.StatusRequestTimeout ||
		e.Error.Code != "request_timeout" || e.Error.RequestID == "" || e.Error.RequestID != res.Header.Get("X-Request-Id") {
		return fmt.Errorf("%s: %d %s, want 408 request_timeout with the request id", what, res.StatusCode, body)
	}
	return nil
}
