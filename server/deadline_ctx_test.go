package server

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

// TestDeadlineCtxBehavesAsWithTimeout checks deadlineCtx against what
// context.WithTimeout promises: the deadline reported, Done closed and Err
// set when it passes or the request's context is cancelled, values passed
// through, contexts derived from it cancelled with it, and after the
// request ends, Canceled.
func TestDeadlineCtxBehavesAsWithTimeout(t *testing.T) {
	base := context.WithValue(context.Background(), ctxKey{}, "v")

	t.Run("deadline passes", func(t *testing.T) {
		d := time.Now().Add(30 * time.Millisecond)
		ctx, end := withDeadline(base, d)
		defer end()
		if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
			t.Fatalf("Deadline() = %v, %t", got, ok)
		}
		if ctx.Value(ctxKey{}) != "v" {
			t.Fatal("the parent's value is lost")
		}
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		if ctx.Err() != nil {
			t.Fatalf("Err before the deadline: %v", ctx.Err())
		}
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a derived context outlived the deadline")
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err after the deadline: %v, child %v", ctx.Err(), child.Err())
		}
		if ctx.Value(ctxKey{}) != "v" || child.Value(ctxKey{}) != "v" {
			t.Fatal("values lost once armed")
		}
	})

	t.Run("request cancelled", func(t *testing.T) {
		parent, cancelParent := context.WithCancel(base)
		ctx, end := withDeadline(parent, time.Now().Add(time.Hour))
		defer end()
		done := ctx.Done()
		cancelParent()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("not cancelled with the request")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err: %v", ctx.Err())
		}
	})

	t.Run("earlier parent deadline", func(t *testing.T) {
		d := time.Now().Add(time.Minute)
		parent, cancel := context.WithDeadline(base, d)
		defer cancel()
		ctx, end := withDeadline(parent, time.Now().Add(time.Hour))
		defer end()
		if got, _ := ctx.Deadline(); !got.Equal(d) {
			t.Fatalf("Deadline() = %v, want the parent's %v", got, d)
		}
	})

	t.Run("ended unasked", func(t *testing.T) {
		ctx, end := withDeadline(base, time.Now().Add(time.Hour))
		end()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err after end: %v", ctx.Err())
		}
		select {
		case <-ctx.Done():
		default:
			t.Fatal("Done open after end")
		}
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		if !errors.Is(child.Err(), context.Canceled) || ctx.Value(ctxKey{}) != "v" {
			t.Fatalf("a context derived after end: %v, value %v", child.Err(), ctx.Value(ctxKey{}))
		}
	})

	t.Run("ended armed", func(t *testing.T) {
		ctx, end := withDeadline(base, time.Now().Add(time.Hour))
		done := ctx.Done()
		end()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Done open after end")
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err after end: %v", ctx.Err())
		}
	})

	t.Run("ran over, ended unasked", func(t *testing.T) {
		// As context.WithTimeout's: the timer fired before the cancel.
		ctx, end := withDeadline(base, time.Now().Add(10*time.Millisecond))
		time.Sleep(20 * time.Millisecond)
		end()
		end() // a second end does nothing
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err after running over: %v", ctx.Err())
		}
	})

	t.Run("request gone, ended unasked", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(base)
		ctx, end := withDeadline(parent, time.Now().Add(time.Hour))
		cancel(errors.New("client left"))
		end()
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("Err: %v", ctx.Err())
		}
	})

	t.Run("AfterFunc", func(t *testing.T) {
		ctx, end := withDeadline(base, time.Now().Add(time.Hour))
		ran := make(chan struct{})
		context.AfterFunc(ctx, func() { close(ran) })
		end()
		end()
		select {
		case <-ran:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc did not run when the request ended")
		}
	})

	t.Run("many at once", func(t *testing.T) {
		// Goroutines ask for Done, Err and values while the request ends;
		// the request's context is cancellable, as net/http's is, so a
		// derived context that did not tie itself to the timer's would
		// leave a goroutine behind.
		before := runtime.NumGoroutine()
		for range 200 {
			parent, cancelParent := context.WithCancel(base)
			defer cancelParent()
			ctx, end := withDeadline(parent, time.Now().Add(time.Hour))
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					child, cancel := context.WithCancel(ctx)
					_ = ctx.Value(ctxKey{})
					_ = ctx.Err()
					cancel()
					<-child.Done()
				}()
			}
			end()
			wg.Wait()
			<-ctx.Done()
		}
		time.Sleep(50 * time.Millisecond)
		if after := runtime.NumGoroutine(); after > before+2 {
			t.Fatalf("%d goroutines before, %d after", before, after)
		}
	})
}
