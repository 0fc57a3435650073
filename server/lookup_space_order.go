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
	"sync"
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
// one layer (25 MiB of buffers and 3 MiB for their points each). One
// caller's batches may hold a quarter of it.
const maxAnswersHeld = 256 << 20

// room counts the bytes batches' answers hold until their clients have
// read them, in all and by caller. A batch is admitted with what it will
// hold at least, if that fits in the room and in its caller's share; what
// it holds beyond once answered is taken the same way while nothing of it
// is written (or added regardless, by a streamed batch whose answer has
// begun), so that the count stays what is held and the refusals fall on
// new batches.
type room struct {
	size, share int64 // in all; for one caller

	mu       sync.Mutex
	held     int64
	byCaller map[string]int64
}

func newRoom(size int64) *room {
	return &room{size: size, share: size / 4, byCaller: map[string]int64{}}
}

// take takes n more bytes for caller, whose batch holds mine already, if
// they fit in the room and in the caller's share, or where they do not
// fit when nothing but the batch is held there (a batch larger than the
// room is answered when it finds it empty), and refuses them with a
// message that says which is full.
func (r *room) take(caller string, mine, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	theirs := r.byCaller[caller]
	switch {
	case n <= 0:
		return nil
	case theirs > mine && theirs+n > r.share:
		return gridmap.Errorf(gridmap.EUNAVAILABLE, "this caller's batches being answered or waiting to be read hold all the memory one caller may (%d MiB); read their answers, or retry shortly", r.share>>20)
	case r.held > mine && r.held+n > r.size:
		return gridmap.Errorf(gridmap.EUNAVAILABLE, "the answers of batches being answered or waiting for their clients to read them take all the memory they may; retry shortly")
	}
	r.held += n
	r.byCaller[caller] = theirs + n
	return nil
}

// add takes n more bytes for caller whether or not they fit: a streamed
// batch's, whose answer has begun.
func (r *room) add(caller string, n int64) {
	r.mu.Lock()
	r.held += n
	r.byCaller[caller] += n
	r.mu.Unlock()
}

// giveBack gives back n bytes caller took.
func (r *room) giveBack(caller string, n int64) {
	r.mu.Lock()
	r.held -= n
	if r.byCaller[caller] -= n; r.byCaller[caller] == 0 {
		delete(r.byCaller, caller)
	}
	r.mu.Unlock()
}

// bytes is what the room holds now.
func (r *room) bytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

// heldPerPoint is what a large batch holds a point besides its answer
// until written: its place in space order and back (two int32), its
// answer's end (an int) and its coordinates.
const heldPerPoint = 4 + 4 + 8 + 16

// answerHolds is what a point's answer holds at least: one layer's answer
// with a few co-owners is about 200 bytes. chunkHolds is a whole chunk's,
// the size of the pool's buffers.
const (
	answerHolds = 256
	chunkHolds  = batchChunk * answerHolds
)

// chunkBuffer is an empty buffer for the answers of a chunk of n points:
// the pool's for a whole chunk, one of answerHolds a point for fewer (a
// small batch's, which would not fill the pool's).
func chunkBuffer(n int) *[]byte {
	if n < batchChunk {
		b := make([]byte, 0, n*answerHolds)
		return &b
	}
	b := chunkBuffers.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// grownBeyond is what buffer b holds beyond the least of the n answers it
// was taken for.
func grownBeyond(b []byte, n int) int64 { return max(int64(cap(b))-int64(n)*answerHolds, 0) }

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
// What batches hold until their clients have read their answers (the
// answers' buffers and a few bytes a point) is counted in answersHeld: a
// batch that finds no room for the least it will hold (answerHolds and
// heldPerPoint a point), or once answered for what its buffers grew to,
// is told to retry before a byte is written, so that clients which never
// read cannot pile answers up in memory until the write timeout lets each
// go.
func (s *Server) answerInSpaceOrder(c echo.Context, q gridmap.LookupQuery, req *batchRequest, anonymous bool) error {
	ctx := c.Request().Context()
	var a spaceAnswers
	defer a.release()
	if err := s.answerAllInSpaceOrder(ctx, callerKey(c, callerOf(c)), q, req, anonymous, &a); err != nil {
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
// They hold held bytes of room for caller until released.
type spaceAnswers struct {
	order  []int32
	chunks []*[]byte
	ends   []int
	room   *room
	caller string
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
		a.room.giveBack(a.caller, a.held)
		a.room = nil
	}
}

// answerAllInSpaceOrder waits for the batch's turn, takes the room for
// caller its answers will hold until written, sorts its points into space
// order and answers them into a on every core.
func (s *Server) answerAllInSpaceOrder(ctx context.Context, caller string, q gridmap.LookupQuery, req *batchRequest, anonymous bool, a *spaceAnswers) error {
	if err := s.batchPoints.Acquire(ctx, int64(len(req.points))); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return gridmap.Errorf(gridmap.EUNAVAILABLE, "large batches from other clients took every place while this one waited; retry shortly")
		}
		return err
	}
	defer s.batchPoints.Release(int64(len(req.points)))

	// What stays in memory until written: the answers' buffers, and per
	// point its place in space order, its answer's end and its
	// coordinates.
	a.room, a.caller = s.answersHeld.Load(), caller
	least := int64(len(req.points)) * (answerHolds + heldPerPoint)
	if err := a.room.take(caller, 0, least); err != nil {
		a.room = nil
		return err
	}
	a.held = least

	chunks := make([]*[]byte, (len(req.points)+batchChunk-1)/batchChunk)
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
				lo, hi := k*batchChunk, min((k+1)*batchChunk, len(points))
				buf := chunkBuffer(hi - lo)
				chunks[k] = buf
				err := unpanicked(func() (err error) {
					for j := lo; j < hi; j++ {
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
	if err := g.Wait(); err != nil {
		return err
	}
	var grown int64
	for k, b := range chunks {
		grown += grownBeyond(*b, min(batchChunk, len(points)-k*batchChunk))
	}
	if err := a.room.take(caller, a.held, grown); err != nil {
		return err
	}
	a.held += grown
	return nil
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
