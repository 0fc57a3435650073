package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestShutdownAnswersStreamsStillStarting: an event stream still waiting
// for its first read of the feed (the feed not yet loaded, every database
// connection busy) when the server shuts down is answered 503 with
// Retry-After, so the client connects again to another instance, and
// nothing is logged as an internal error.
func TestShutdownAnswersStreamsStillStarting(t *testing.T) {
	db := pgtest.NewDBWith(t, postgresSmallPool)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	access := postgres.NewAccessStore(db)
	go access.Follow(ctx)
	<-access.Listening()
	logs := &lockedBuffer{}
	// The feed is not run: each stream's first read asks the database.
	s := New(Config{}, Deps{Access: access, Feed: postgres.NewFeed(db), Unavailable: postgres.Unavailable},
		slog.New(slog.NewJSONHandler(logs, nil)))
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: tcp}
	admin := signInAsAdmin(t, access, ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	// The token known (kept after its first use), then every connection
	// of the pool taken.
	if r := do(t, "GET", "http://"+ln.Addr().String()+"/v1/session", "", bearer(admin)...); r.status != 200 {
		t.Fatalf("the admin's session: %d %s", r.status, r.body)
	}
	var held []*pgxpool.Conn
	for {
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		c, err := db.Pool.Acquire(actx)
		acancel()
		if err != nil {
			break
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()

	const streams = 4
	answers := make(chan *http.Response, streams)
	accepted := ln.accepted.Load()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for range streams {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			res, err := client.Do(req)
			if err != nil {
				t.Error(err)
				answers <- nil
				return
			}
			answers <- res
		}()
	}
	// The server has the streams' connections; they wait for a database
	// connection (or are about to).
	for ln.accepted.Load() < accepted+streams {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range streams {
		res := <-answers
		if res == nil {
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"unavailable"`) {
			t.Errorf("a stream starting at shutdown: %d %s (Retry-After %q), want 503 unavailable", res.StatusCode, b, res.Header.Get("Retry-After"))
		}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if l := logs.String(); strings.Contains(l, `"internal error"`) || strings.Contains(l, `"status":500`) {
		t.Errorf("logged:\n%s", logs.String())
	}
}

// countingListener counts the connections the server has accepted.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// TestStreamsAfterShutdownBegan: once shutdown has begun, a stream asked
// for (new, or resuming with Last-Event-ID or ?since=) is answered 503
// with Retry-After before anything of it is written; a malformed
// Last-Event-ID is still a 400.
func TestStreamsAfterShutdownBegan(t *testing.T) {
	ts := newTestServer(t, Config{})
	ts.endStreams() // as Shutdown does first
	for _, c := range []struct {
		name, path, lastID string
		status             int
	}{
		{"a new stream", "/v1/events", "", 503},
		{"a stream resuming with Last-Event-ID", "/v1/events", "3", 503},
		{"a stream resuming with since", "/v1/events?since=3", "", 503},
		{"a malformed Last-Event-ID", "/v1/events", "three", 400},
	} {
		header := bearer(ts.admin)
		if c.lastID != "" {
			header = append(header, "Last-Event-ID", c.lastID)
		}
		r := do(t, "GET", ts.url+c.path, "", header...)
		if r.status != c.status || strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") ||
			(c.status == 503) != (r.header.Get("Retry-After") != "") {
			t.Errorf("%s: %d %s %v, want %d", c.name, r.status, r.body, r.header, c.status)
		}
	}
}
