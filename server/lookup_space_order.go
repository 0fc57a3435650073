package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"
)

// defaultSpaceOrderFrom is the size from which a batch is answered in space
// order. A client's points come in its own order (reports as they were
// filed, vehicles as they reported), scattered over the layer; answered in
// that order each lookup reads cells, pieces and chains no longer in the
// processor's caches. In space order neighbouring points follow each other
// and read what the last one read: over New York's tracts, a batch of
// 100,000 points a lookup took 0.57 of the time. A smaller batch holds too
// few points a place to gain, and is streamed as it is answered.
const defaultSpaceOrderFrom = 4 * batchChunk

// maxAnswersHeld bounds the memory batches' answers hold between being
// computed and being read by their clients: about nine full batches with
// one layer (25 MiB of buffers and 3 MiB for their points each).
const maxAnswersHeld = 256 << 20

// room counts the bytes batches' answers hold, up to its size: a batch is
// admitted with what it will hold at least, and what it holds beyond that
// once answered (buffers the pool grew) is added whether or not it fits,
// so the count stays what is held and only new batches are refused.
type room struct {
	held atomic.Int64
	size int64
}

func newRoom(size int64) *room { return &room{size: size} }

// admit takes n bytes if they fit, or when nothing is held (a batch
// larger than the room alone is answered when it finds the room empty),
// and reports whether it took them.
func (r *room) admit(n int64) bool {
	for {
		held := r.held.Load()
		if held > 0 && held+n > r.size {
			return false
		}
		if r.held.CompareAndSwap(held, held+n) {
			return true
		}
	}
}

// add takes n more bytes for a batch already admitted, whether or not they
// fit.
func (r *room) add(n int64) { r.held.Add(n) }

func (r *room) giveBack(n int64) { r.held.Add(-n) }

// errNoRoom is the refusal of a batch the room has no place for.
func errNoRoom() error {
	return gridmap.Errorf(gridmap.EUNAVAILABLE, "the answers of batches waiting for their clients to read them take all the memory they may; retry shortly")
}

// heldPerPoint is what a large batch holds a point besides its answer
// until written: its place in space order and back (two int32), its
// answer's end (an int) and its coordinates.
const heldPerPoint = 4 + 4 + 8 + 16

// chunkHolds is what a chunk's answers hold at least: a buffer as the
// pool makes it.
const chunkHolds = batchChunk * 256

// answerInSpaceOrder answers a large batch from the index in space order on
// every core, holding the answers, then writes them in input order with
// their length. As no byte is written before every point is answered, an
// error anywhere is answered as such.
//
// The points being answered at once, over every batch, are at most
// gridmap.MaxLookupPoints (batchPoints, first come first served): a batch
// already keeps every core busy, so the others lose no throughput waiting
// their turn, and the answers held while computing stay those of one full
// batch (a few hundred bytes a point with one layer and few co-owners). A
// batch gives its points back once answered, before it is written, so a
// client slow to read holds nobody up (its answers stay held until it has
// read them, as long as the server's write timeout allows); a request
// whose client goes away while it waits or is answered ends there, and one
// whose deadline passes while it waits is told to retry.
//
// What batches hold for clients still reading their answers (the answers'
// buffers and a few bytes a point) is counted in answersHeld: a batch that
// finds no room for the least it will hold (its buffers as the pool makes
// them) is told to retry before it is answered, so that clients which
// never read cannot pile answers up in memory until the write timeout lets
// each go.
func (s *Server) answerInSpaceOrder(c echo.Context, q gridmap.LookupQuery, req *batchRequest, anonymous bool) error {
	ctx := c.Request().Context()
	var a spaceAnswers
	defer a.release()
	if err := s.answerAllInSpaceOrder(ctx, q, req, anonymous, &a); err != nil {
		return err
	}

	at := make([]int32, len(a.order)) // at[i]: the input point i's place in space order
	for j, i := range a.order {
		at[i] = int32(j)
	}
	size := len(`{"results":[]}`) + max(len(at)-1, 0)
	for _, b := range a.chunks {
		size += len(*b)
	}
	w := c.Response()
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.Header().Set(echo.HeaderContentLength, strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(`{"results":[`)
	for i, j := range at {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		start := 0
		if j%batchChunk != 0 {
			start = a.ends[j-1]
		}
		if _, err := bw.Write((*a.chunks[j/batchChunk])[start:a.ends[j]]); err != nil {
			return nil // the client went away; nothing left to tell it
		}
	}
	_, _ = bw.WriteString(`]}`)
	_ = bw.Flush()
	return nil
}

// spaceAnswers are a batch's answers in space order: the j-th point in
// space order is the input's order[j], and its answer ends at ends[j] in
// the buffer of chunk j/batchChunk, starting where the one before it ends
// unless it is the chunk's first.
//
// They hold held bytes of room until released.
type spaceAnswers struct {
	order  []int32
	chunks []*[]byte
	ends   []int
	room   *room
	held   int64
}

// release puts the answers' buffers back and gives back their room.
func (a *spaceAnswers) release() {
	for _, b := range a.chunks {
		if b != nil {
			putChunkBuffer(b)
		}
	}
	a.chunks = nil
	if a.room != nil {
		a.room.giveBack(a.held)
		a.room = nil
	}
}

// answerAllInSpaceOrder waits for the batch's turn, takes the room its
// answers will hold until written, sorts its points into space order and
// answers them into a on every core.
func (s *Server) answerAllInSpaceOrder(ctx context.Context, q gridmap.LookupQuery, req *batchRequest, anonymous bool, a *spaceAnswers) error {
	if err := s.batchPoints.Acquire(ctx, int64(len(req.points))); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return gridmap.Errorf(gridmap.EUNAVAILABLE, "large batches from other clients took every place while this one waited; retry shortly")
		}
		return err
	}
	defer s.batchPoints.Release(int64(len(req.points)))

	// What stays in memory until written: the answers' buffers, and per
	// point its place in space order, its answer's end and its
	// coordinates. The buffers are taken at the pool's size first; what
	// they grew beyond is added once answered.
	chunks := make([]*[]byte, (len(req.points)+batchChunk-1)/batchChunk)
	least := int64(len(chunks))*chunkHolds + int64(len(req.points))*heldPerPoint
	if room := s.answersHeld; !room.admit(least) {
		return errNoRoom()
	} else {
		a.room, a.held = room, least
	}
	defer func() {
		grown := -int64(len(chunks)) * chunkHolds
		for _, b := range chunks {
			if b != nil {
				grown += int64(cap(*b))
			}
		}
		if grown > 0 {
			a.room.add(grown)
			a.held += grown
		}
	}()

	var points [][2]float64
	a.order, points = geo.SpaceOrder(req.points)
	ends := make([]int, len(points))
	a.chunks, a.ends = chunks, ends
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		g.Go(func() error {
			var ans gridmap.LookupAnswer
			for {
				k := int(next.Add(1) - 1)
				if k >= len(chunks) {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err // a point failed, or the client went away
				}
				buf := chunkBuffers.Get().(*[]byte)
				*buf = (*buf)[:0]
				chunks[k] = buf
				err := unpanicked(func() (err error) {
					for j := k * batchChunk; j < min((k+1)*batchChunk, len(points)); j++ {
						if *buf, err = s.appendAnswer(gctx, q, req.crs, points[j], &ans, anonymous, *buf); err != nil {
							return err
						}
						ends[j] = len(*buf)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// unpanicked runs do, turning a panic into an error. A batch's workers run
// on goroutines of their own, where a panic would end the process: only
// the request's goroutine is recovered by the server.
func unpanicked(do func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("answering a batch: %v\n%s", p, debug.Stack())
		}
	}()
	return do()
}
