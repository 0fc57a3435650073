package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
	for range streams {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+admin)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				answers <- nil
				return
			}
			answers <- res
		}()
	}
	time.Sleep(300 * time.Millisecond) // the streams wait for a connection
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
