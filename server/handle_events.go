package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// sseHeartbeat keeps idle connections (and the proxies on the way) open.
const sseHeartbeat = 15 * time.Second

// handleEvents streams report events and boundary changes as server-sent
// events: GET /v1/events. Report events carry their id, so a client that
// reconnects with Last-Event-ID (or ?since=ID) gets what it missed, in
// order; a new client starts with what happens next.
func (s *Server) handleEvents(c echo.Context) error {
	ctx := c.Request().Context()
	feed := s.deps.Feed
	last := c.Request().Header.Get("Last-Event-ID")
	if last == "" {
		last = c.QueryParam("since")
	}
	var after int64
	if last != "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return gridmap.Errorf(gridmap.EINVALID, "Last-Event-ID %q must be the id of an event this stream sent", last)
		}
		after = n
	} else {
		n, err := feed.Latest(ctx)
		if err != nil {
			return err
		}
		after = n
	}
	// Subscribe before the first read, so nothing committed in between is missed.
	events, unsubscribe := feed.Subscribe()
	defer unsubscribe()

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

	send := func() error {
		for {
			batch, err := feed.Since(ctx, after, 500)
			if err != nil {
				return err
			}
			for _, e := range batch {
				fmt.Fprintf(w, "id: %d\nevent: report\ndata: %s\n\n", e.ID, e.Data)
				after = e.ID
			}
			w.Flush()
			if len(batch) < 500 {
				return nil
			}
		}
	}
	if err := send(); err != nil {
		return nil // headers are out: end the stream, the client reconnects
	}
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-heartbeat.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			w.Flush()
		case e := <-events:
			if e.Type == "boundary" {
				fmt.Fprintf(w, "event: boundary\ndata: %s\n\n", e.Data)
				w.Flush()
				continue
			}
			if err := send(); err != nil {
				return nil
			}
		}
	}
}
