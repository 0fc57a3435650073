package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// sseHeartbeat keeps idle connections (and the proxies on the way) open.
const sseHeartbeat = 15 * time.Second

// sseReadTimeout bounds each read of the feed by a stream.
const sseReadTimeout = 30 * time.Second

// sseBatch is how many events one read of the feed returns.
const sseBatch = 500

// handleEvents streams report events, boundary changes and workers' new
// positions as server-sent events: GET /v1/events. Worker events go only
// to callers who may see the worker (dispatchers and up, inside their
// scope). Every event carries its number in the feed as its
// id, increasing along the stream, in the order the events committed. A
// client that reconnects with Last-Event-ID (or ?since=ID) gets every event
// after that one exactly once, in the same order as every other client; a
// report event id from before the feed numbered events works too. A new
// client starts with what happens next. The stream ends when the server
// shuts down.
func (s *Server) handleEvents(c echo.Context) error {
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	feed := s.deps.Feed
	// Subscribe before the first read, so nothing numbered in between is
	// missed.
	wake, unsubscribe := feed.Subscribe()
	defer unsubscribe()
	after, err := resumeAfter(c)
	if err != nil {
		return err
	}
	// Each read of the feed has a deadline of its own; the stream has none.
	read := func(read func(context.Context) error) error {
		rctx, cancel := context.WithTimeout(ctx, sseReadTimeout)
		defer cancel()
		return read(rctx)
	}
	if after < 0 {
		err := read(func(ctx context.Context) (err error) { after, err = feed.Latest(ctx); return err })
		if err != nil && s.shuttingDown() == nil {
			return err
		}
	}
	// A stream the shutdown ended while it read, or before it began,
	// writes nothing of itself.
	if err := s.shuttingDown(); err != nil {
		return err
	}
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The stream outlives the server's write timeout.
	rc := http.NewResponseController(w.Writer)
	_ = rc.SetWriteDeadline(time.Time{})
	fmt.Fprint(w, "retry: 2000\n\n")
	w.Flush()

	caller := callerOf(c)
	scope := caller.ScopeOf()
	send := func() error {
		// The stream lasts hours: the caller is checked again before
		// each batch, so a revoked token, a disabled account, an ended
		// session or a changed role or scope ends it.
		if err := s.stillAllowed(c); err != nil {
			return err
		}
		for {
			var batch []gridmap.FeedEvent
			if err := read(func(ctx context.Context) (err error) { batch, err = feed.Since(ctx, after, sseBatch); return err }); err != nil {
				return err
			}
			for _, e := range batch {
				after = e.ID
				if e.Type == "report" && !scope.HoldsReport(e.Owners) ||
					e.Type == "worker" && !(caller.MaySeeWorkers() && scope.HoldsWorker(e.Worker)) {
					// Outside the caller's jurisdiction or role; the id
					// moves on so a resume does not read it again.
					continue
				}
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, e.Data)
			}
			w.Flush()
			if len(batch) < sseBatch {
				return nil
			}
		}
	}
	// Headers are out: on an error the stream ends and the client
	// reconnects where it was.
	if err := send(); err != nil {
		return nil
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			if s.stillAllowed(c) != nil {
				return nil
			}
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
		case <-wake:
			if err := send(); err != nil {
				return nil
			}
		}
	}
}

// resumeAfter returns the number a client resumes after (Last-Event-ID, or
// ?since=), or -1 for a new client.
func resumeAfter(c echo.Context) (int64, error) {
	last := c.Request().Header.Get("Last-Event-ID")
	if last == "" {
		last = c.QueryParam("since")
	}
	if last == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil || n < 0 {
		return 0, gridmap.Errorf(gridmap.EINVALID, "Last-Event-ID %q must be the id of an event this stream sent", last)
	}
	return n, nil
}

// shuttingDown is the error of a stream that the server's shutdown ends
// before it began, nil before the shutdown: 503, so its client connects
// again, to another instance.
func (s *Server) shuttingDown() error {
	if s.streams.Err() != nil {
		return gridmap.Errorf(gridmap.EUNAVAILABLE, "this server is shutting down; connect again")
	}
	return nil
}

// stillAllowed checks a long request's caller again: the same credentials
// must still stand for the same caller (role and scope). Returns
// EUNAUTHORIZED when they no longer do.
func (s *Server) stillAllowed(c echo.Context) error {
	was := callerOf(c)
	if was.Kind == gridmap.CallerAnonymous {
		return nil
	}
	now, _, err := s.identify(c)
	switch {
	case err != nil && gridmap.ErrorCode(err) != gridmap.EUNAUTHORIZED:
		return nil // the database is away: the next check decides
	case err != nil, now.Kind != was.Kind, now.ID != was.ID, now.Role != was.Role, !sameScope(now.Scope, was.Scope):
		return gridmap.Errorf(gridmap.EUNAUTHORIZED, "your credentials changed; connect again")
	}
	return nil
}

func sameScope(a, b *gridmap.Scope) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}
