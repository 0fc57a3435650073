package tiles

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

// gatedSource draws tile content from its version, the number of the
// render, and holds each render until the test lets it go.
type gatedSource struct {
	renders atomic.Int64
	started chan int64
	release chan struct{}
}

func (g *gatedSource) Tileset(context.Context, string) (*gridmap.Tileset, error) { return nil, nil }

func (g *gatedSource) RenderTile(ctx context.Context, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	n := g.renders.Add(1)
	g.started <- n
	<-g.release
	return &gridmap.RenderedTile{MVT: []byte{byte(n)}, Version: string(rune('0' + n))}, nil
}

// TestServiceRendersAgainForARequestAfterAChange: a request that arrives
// while a tile renders waits for that render, unless a change to the tile
// comes in between; then it gets a render of its own, begun after the
// change, never the one the change overtook.
func TestServiceRendersAgainForARequestAfterAChange(t *testing.T) {
	src := &gatedSource{started: make(chan int64, 4), release: make(chan struct{})}
	svc := NewService(src, 1<<20)
	q := gridmap.TileQuery{Tileset: "nyc", Z: 14, X: 4823, Y: 6160}
	ctx := context.Background()
	type got struct {
		e   *Entry
		err error
	}
	ask := func() chan got {
		ch := make(chan got, 1)
		go func() {
			e, _, err := svc.Tile(ctx, q)
			ch <- got{e, err}
		}()
		return ch
	}
	started := func() int64 {
		t.Helper()
		select {
		case n := <-src.started:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no render started")
			return 0
		}
	}
	first := ask()
	if n := started(); n != 1 {
		t.Fatalf("render %d started first", n)
	}
	joiner := ask() // before the change: render 1 is good enough for it
	time.Sleep(50 * time.Millisecond)
	svc.Cache().Invalidate("nyc", [][4]float64{wallBox})
	late := ask() // after the change: must not get render 1
	time.Sleep(50 * time.Millisecond)
	src.release <- struct{}{}
	if g := <-first; g.err != nil || g.e.RawSize != 1 {
		t.Fatalf("the first request: %+v", g)
	}
	// The two waiting requests render again, once, together.
	if n := started(); n != 2 {
		t.Fatalf("render %d started second", n)
	}
	src.release <- struct{}{}
	for _, ch := range []chan got{joiner, late} {
		g := <-ch
		if g.err != nil {
			t.Fatal(g.err)
		}
		if string(g.e.Gzip) == string(compress([]byte{1})) {
			t.Error("a request that came after the change got the render it overtook")
		}
	}
	if n := src.renders.Load(); n != 2 {
		t.Errorf("%d renders, want 2", n)
	}
	// Render 2 began after the change: it is cached.
	if _, how, _ := svc.Tile(ctx, q); how != Hit {
		t.Errorf("the tile after the second render: %s, want a hit", how)
	}
}

type panickySource struct {
	gatedSource
	panics atomic.Bool
}

func (p *panickySource) RenderTile(ctx context.Context, q gridmap.TileQuery) (*gridmap.RenderedTile, error) {
	if p.panics.Load() {
		p.started <- 0
		<-p.release
		panic("a bug in a render")
	}
	return &gridmap.RenderedTile{MVT: []byte{7}, Version: "7"}, nil
}

// TestServiceRenderThatPanics: those waiting for a render that panics get
// an error, not a nil tile nor a wait for ever, and the next request
// renders again.
func TestServiceRenderThatPanics(t *testing.T) {
	src := &panickySource{gatedSource: gatedSource{started: make(chan int64, 1), release: make(chan struct{})}}
	src.panics.Store(true)
	svc := NewService(src, 1<<20)
	q := gridmap.TileQuery{Tileset: "nyc", Z: 14, X: 4823, Y: 6160}
	go func() {
		defer func() { recover() }()
		svc.Tile(context.Background(), q)
	}()
	<-src.started
	waiter := make(chan error, 1)
	go func() {
		_, _, err := svc.Tile(context.Background(), q)
		waiter <- err
	}()
	time.Sleep(50 * time.Millisecond)
	src.panics.Store(false)
	close(src.release)
	select {
	case err := <-waiter:
		if err == nil {
			t.Error("the request waiting for a render that panicked got no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request waiting for a render that panicked still waits")
	}
	e, _, err := svc.Tile(context.Background(), q)
	if err != nil || e == nil || e.RawSize != 1 {
		t.Errorf("the next request: %+v %v", e, err)
	}
}
