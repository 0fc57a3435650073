package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is a request's context with its deadline, cheap for the
// requests that never wait on it. context.WithTimeout costs every request
// a timer, an entry in the parent's children and, on an idle server, a
// wake of the network poller; a lookup answered from memory needs none of
// it. deadlineCtx reports its deadline to whoever asks and makes the real
// context, timer and all, only when something first asks for Done or Err
// (pgx does, for every query): from then on it is that context.
type deadlineCtx struct {
	context.Context // the request's own
	deadline        time.Time
	mu              sync.Mutex
	armed           atomic.Pointer[armedDeadline]
}

type armedDeadline struct {
	ctx    context.Context // nil when the request ended before anyone asked
	cancel context.CancelFunc
	err    error // with ctx nil: why it is done
}

// closed is the Done of a request that ended before anyone asked.
var closed = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// withDeadline returns parent with deadline d and the function that ends
// it, to call when the request is done.
func withDeadline(parent context.Context, d time.Time) (*deadlineCtx, func()) {
	c := &deadlineCtx{Context: parent, deadline: d}
	return c, c.end
}

// arm makes the real context on first use.
func (c *deadlineCtx) arm() *armedDeadline {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a
	}
	ctx, cancel := context.WithDeadline(c.Context, c.deadline)
	a := &armedDeadline{ctx: ctx, cancel: cancel}
	c.armed.Store(a)
	return a
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} {
	if a := c.arm(); a.ctx != nil {
		return a.ctx.Done()
	}
	return closed
}

func (c *deadlineCtx) Err() error {
	if a := c.arm(); a.ctx != nil {
		return a.ctx.Err()
	}
	return c.armed.Load().err
}

// Value answers from the real context once it is made: a context derived
// from this one then finds the timer context among the values and ties
// itself to it directly, as it would to context.WithTimeout's. Asked for
// clientKey, it gives the request's own context (see clientGone).
func (c *deadlineCtx) Value(key any) any {
	if key == (clientKey{}) {
		return c.Context
	}
	if a := c.armed.Load(); a != nil && a.ctx != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// clientKey asks a request's context for the context of its client's
// request, under any deadline the server gave it.
type clientKey struct{}

// clientGone reports whether the client of the request ctx belongs to went
// away: the context of its request is cancelled. The deadline's own
// context is cancelled by the server too, when the request is done, before
// its error is answered.
func clientGone(ctx context.Context) bool {
	if client, ok := ctx.Value(clientKey{}).(context.Context); ok {
		ctx = client
	}
	return errors.Is(ctx.Err(), context.Canceled)
}

// end releases the timer, if it was made. Later calls do nothing.
func (c *deadlineCtx) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		if a.cancel != nil {
			a.cancel()
		}
		return
	}
	// Ended before anyone asked: whoever asks later finds it done, as
	// after context.WithTimeout's cancel, for the reason the timer's
	// context would give (the error handler asks after the request ran
	// over its deadline).
	var err error
	switch {
	case !time.Now().Before(c.deadline):
		err = context.DeadlineExceeded // the timer would have fired first
	case c.Context.Err() != nil:
		err = c.Context.Err()
	default:
		err = context.Canceled
	}
	c.armed.Store(&armedDeadline{err: err})
}
