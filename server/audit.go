package server

import (
	"context"
	"net/http"
	"strconv"
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
// (actor and role), what (action = method and route, target = path, with
// secrets masked), when it came, the request id, the status answered and
// the versions the handler reported. A handler that panics is recorded
// as a 500. Writes refused for their rate are not recorded one by one
// (they are counted in /metrics), nor more than one anonymous refusal a
// minute per address: nobody can fill the log from outside.
func (s *Server) audit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		if !audited(c) || s.deps.Access == nil {
			return next(c)
		}
		at := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.record(c, at, http.StatusInternalServerError)
				panic(p)
			}
		}()
		if err = next(c); err != nil {
			c.Error(err)
		}
		s.record(c, at, c.Response().Status)
		return nil
	}
}

// record queues the audit entry of a request answered with status.
func (s *Server) record(c echo.Context, at time.Time, status int) {
	caller := callerOf(c)
	// Sign-in attempts are recorded each (their own slowing down bounds
	// them); of everything else nobody signed does, one entry a minute per
	// address, action and answer.
	signIn := c.Path() == "/v1/session" && c.Request().Method == http.MethodPost
	if status == http.StatusTooManyRequests || caller.Kind == gridmap.CallerAnonymous && !signIn && c.Get(auditActorKey) == nil &&
		!s.anonymousRefusals.first(c.RealIP()+" "+c.Request().Method+" "+c.Path()+" "+strconv.Itoa(status), at) {
		return
	}
	e := &gridmap.AuditEntry{At: at, Actor: caller.Actor(), Role: caller.Role,
		Action: c.Request().Method + " " + c.Path(), Target: auditText(maskedPath(c)), RequestID: requestID(c),
		Status: status, Address: c.RealIP(), Before: c.Get(auditBeforeKey), After: c.Get(auditAfterKey)}
	if caller.Kind == gridmap.CallerAnonymous {
		e.Actor = "anonymous"
		if v, ok := c.Get(auditActorKey).(string); ok {
			e.Actor = auditText(v)
		}
	}
	s.auditLog.add(e)
}

// maskedPath is the request's path with secrets (a sign-in link's) masked,
// for the audit log and the request log.
func maskedPath(c echo.Context) string {
	if secret := c.Param("secret"); secret != "" {
		return strings.Replace(c.Request().URL.Path, secret, "…", 1)
	}
	return c.Request().URL.Path
}

// onceAMinute remembers, per key, when something was last let through, to
// let it through at most once a minute.
type onceAMinute struct {
	mu    sync.Mutex
	last  map[string]time.Time
	swept time.Time
}

// first reports whether key gets through at now, and notes it if so.
func (o *onceAMinute) first(key string, now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last == nil {
		o.last = map[string]time.Time{}
	}
	if now.Sub(o.swept) > time.Minute {
		for k, t := range o.last {
			if now.Sub(t) > time.Minute {
				delete(o.last, k)
			}
		}
		o.swept = now
	}
	if t, ok := o.last[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	o.last[key] = now
	return true
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
		w.mu.Lock()
		n := len(w.queue)
		w.mu.Unlock()
		if n > 0 {
			w.onError(ctx.Err(), n)
		}
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
