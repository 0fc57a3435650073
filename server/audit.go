package server

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// Keys handlers set to enrich their audit entry.
const (
	auditBeforeKey = "gridmap.audit_before" // the target's version before the write
	auditAfterKey  = "gridmap.audit_after"  // and after it
	auditActorKey  = "gridmap.audit_actor"  // who a sign-in attempt was for
)

// setVersions records a write's target versions for the audit log.
func setVersions(c echo.Context, before, after any) {
	if before != nil {
		c.Set(auditBeforeKey, before)
	}
	if after != nil {
		c.Set(auditAfterKey, after)
	}
}

// auditedReads are reads that are recorded like writes: signing in with a
// one-time link.
var auditedReads = map[string]bool{"GET /signin/:secret": true}

// audited reports whether a request goes into the audit log: every write
// (whatever its outcome, refusals included), except lookups sent by POST,
// which only read.
func audited(c echo.Context) bool {
	m, p := c.Request().Method, c.Path()
	if p == "" {
		return false
	}
	if !unsafeMethod(m) {
		return auditedReads[m+" "+p]
	}
	return p != "/v1/lookup"
}

// audit records each write in the audit log after it is answered: who
// (actor and role), what (action = method and route, target = path), the
// request id, the status answered and the versions the handler reported.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !audited(c) || s.deps.Access == nil {
			return next(c)
		}
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		caller := callerOf(c)
		e := &gridmap.AuditEntry{At: time.Now(), Actor: caller.Actor(), Role: caller.Role,
			Action: c.Request().Method + " " + c.Path(), Target: auditText(c.Request().URL.Path), RequestID: requestID(c),
			Status: c.Response().Status, Address: c.RealIP(), Before: c.Get(auditBeforeKey), After: c.Get(auditAfterKey)}
		if caller.Kind == gridmap.CallerAnonymous {
			e.Actor = "anonymous"
			if v, ok := c.Get(auditActorKey).(string); ok {
				e.Actor = auditText(v)
			}
		}
		s.auditLog.add(e)
		return nil
	}
}

// auditWriter writes audit entries in batches off the request path: one
// insert for every entry gathered while the previous batch was written.
// Shutdown writes what is queued before the server stops.
type auditWriter struct {
	mu      sync.Mutex
	queue   []*gridmap.AuditEntry
	wake    chan struct{}
	closed  bool
	done    chan struct{}
	write   func(context.Context, ...*gridmap.AuditEntry) error
	onError func(error, int)
}

// maxAuditQueue bounds the entries waiting: past it, a request waits for
// the writer rather than the log growing without bound or dropping entries.
const maxAuditQueue = 10000

func newAuditWriter(write func(context.Context, ...*gridmap.AuditEntry) error, onError func(error, int)) *auditWriter {
	w := &auditWriter{wake: make(chan struct{}, 1), done: make(chan struct{}), write: write, onError: onError}
	go w.run()
	return w
}

func (w *auditWriter) add(e *gridmap.AuditEntry) {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			w.flush([]*gridmap.AuditEntry{e})
			return
		}
		if len(w.queue) < maxAuditQueue {
			w.queue = append(w.queue, e)
			w.mu.Unlock()
			break
		}
		w.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *auditWriter) run() {
	defer close(w.done)
	for {
		<-w.wake
		w.mu.Lock()
		batch, closed := w.queue, w.closed
		w.queue = nil
		w.mu.Unlock()
		w.flush(batch)
		if closed {
			return
		}
	}
}

// flush writes a batch, retrying for a while when the database is away.
func (w *auditWriter) flush(batch []*gridmap.AuditEntry) {
	for start := 0; start < len(batch); start += 500 {
		part := batch[start:min(start+500, len(batch))]
		var err error
		for attempt := 0; attempt < 10; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = w.write(ctx, part...)
			cancel()
			if err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		lost := len(part)
		if err != nil && len(part) > 1 {
			// One entry the database refuses must not take the others
			// with it: each goes on its own.
			lost = 0
			for _, e := range part {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if w.write(ctx, e) != nil {
					lost++
				}
				cancel()
			}
		}
		if err != nil && lost > 0 {
			w.onError(err, lost)
		}
	}
}

// close writes what is queued and stops the writer.
func (w *auditWriter) close(ctx context.Context) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-ctx.Done():
	}
}

// auditText is s as the audit log can hold it: NUL and bytes that are not
// UTF-8 become U+FFFD, and it is cut to maxAuditText bytes (target and
// actor are indexed, and a btree entry holds at most 2,704 bytes).
func auditText(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	if len(s) <= maxAuditText {
		return s
	}
	cut := maxAuditText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

const maxAuditText = 1000
