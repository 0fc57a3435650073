package server

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/labstack/echo/v4"
)

// lookupScratch is what one lookup reuses: the answer and the output.
type lookupScratch struct {
	answer gridmap.LookupAnswer
	buf    []byte
}

var lookupScratchPool = sync.Pool{New: func() any { return &lookupScratch{buf: make([]byte, 0, 1024)} }}

// handleLookup answers which grids cover one point:
// GET /v1/lookup?lon=&lat=[&crs=][&layer=][&at=][&tolerance_m=][&accuracy_m=].
// Thousands a second: the query is read and the answer written without
// allocating, from pooled scratch.
func (s *Server) handleLookup(c echo.Context) error {
	p := readLookupParams(c.Request().URL.RawQuery)
	lon, err := numberParam("lon", p.lon, true)
	if err != nil {
		return err
	}
	lat, err := numberParam("lat", p.lat, true)
	if err != nil {
		return err
	}
	if err := gridmap.CheckLonLat(lon, lat); err != nil {
		return err
	}
	q := gridmap.LookupQuery{Layer: p.layer}
	if p.tolerance != "" {
		t, err := numberParam("tolerance_m", p.tolerance, false)
		if err != nil {
			return err
		}
		q.ToleranceM = &t
	}
	if q.AccuracyM, err = numberParam("accuracy_m", p.accuracy, false); err != nil {
		return err
	}
	if p.at != "" {
		t, err := parseTime("at", p.at)
		if err != nil {
			return err
		}
		q.At = &t
	}
	if q.Lon, q.Lat, err = geo.ToWGS84(p.crs, lon, lat); err != nil {
		return err
	}
	sc := lookupScratchPool.Get().(*lookupScratch)
	defer lookupScratchPool.Put(sc)
	if err := s.deps.Locator.Lookup(c.Request().Context(), q, &sc.answer); err != nil {
		return err
	}
	if callerOf(c).Kind == gridmap.CallerAnonymous {
		sc.answer.ForgetPeople()
	}
	sc.buf = AppendLookupJSON(sc.buf[:0], &sc.answer, lon, lat, p.crs)
	c.Response().Header()[echo.HeaderContentType] = jsonContentType
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sc.buf)
}

// jsonContentType is the Content-Type header of JSON answers, shared by
// every answer: net/http only reads it, and Header.Set and Add replace or
// grow a copy.
var jsonContentType = []string{echo.MIMEApplicationJSON}

// lookupParams are GET /v1/lookup's query parameters, each its first value
// ("" when absent), as echo's QueryParam would read them.
type lookupParams struct{ lon, lat, layer, crs, tolerance, accuracy, at string }

func readLookupParams(raw string) lookupParams {
	var p lookupParams
	var seen uint8
	q := newQueryPairs(raw)
	for k, v, ok := q.next(); ok; k, v, ok = q.next() {
		var dst *string
		var bit uint8
		switch k {
		case "lon":
			dst, bit = &p.lon, 1
		case "lat":
			dst, bit = &p.lat, 2
		case "layer":
			dst, bit = &p.layer, 4
		case "crs":
			dst, bit = &p.crs, 8
		case "tolerance_m":
			dst, bit = &p.tolerance, 16
		case "accuracy_m":
			dst, bit = &p.accuracy, 32
		case "at":
			dst, bit = &p.at, 64
		default:
			continue
		}
		if seen&bit == 0 {
			seen |= bit
			*dst = v
		}
	}
	return p
}

// numberParam reads query parameter name's value v as a number; "" is 0
// unless required.
func numberParam(name, v string, required bool) (float64, error) {
	if v == "" {
		if required {
			return 0, gridmap.Errorf(gridmap.EINVALID, "%s is required", name)
		}
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, gridmap.Errorf(gridmap.EINVALID, "%s %q must be a number", name, v)
	}
	return f, nil
}

// batchChunk is how many points one worker takes at a time.
const batchChunk = 2048

// chunkBuffers hold the answers of one chunk of a batch, reused; those
// grown past maxPooledChunk (answers with many layers or co-owners) are
// left to the collector.
var chunkBuffers = sync.Pool{New: func() any { b := make([]byte, 0, chunkHolds); return &b }}

const maxPooledChunk = 4 * chunkHolds

// putChunkBuffer puts a chunk's buffer back for reuse, unless it grew
// past maxPooledChunk or was a small batch's.
func putChunkBuffer(b *[]byte) {
	if c := cap(*b); chunkHolds <= c && c <= maxPooledChunk {
		chunkBuffers.Put(b)
	}
}

// batchBodies hold batch bodies, reused: a 100,000-point batch is a few
// megabytes. Bodies past maxPooledBody are left to the collector.
var batchBodies = sync.Pool{New: func() any { return new([]byte) }}

// bodyPrealloc bounds what a body's Content-Length reserves before its
// bytes arrive; maxPooledBody, the bodies kept for reuse.
const (
	bodyPrealloc  = 1 << 20
	maxPooledBody = 8 << 20
)

// handleLookupBatch answers up to gridmap.MaxLookupPoints points in input
// order: POST /v1/lookup {"points": [[lon, lat], ...], "crs", "layer",
// "tolerance_m", "accuracy_m", "at"} -> {"results": [...]}. A bad point
// fails the whole batch with its index; nothing is answered in part. The
// body is read and answered on every core: a large batch in space order,
// written whole once answered (answerInSpaceOrder), a smaller one streamed
// in input order as its chunks are ready (streamBatch).
func (s *Server) handleLookupBatch(c echo.Context) error {
	body := batchBodies.Get().(*[]byte)
	defer func() {
		if cap(*body) > maxPooledBody {
			*body = nil
		}
		batchBodies.Put(body)
	}()
	var err error
	if *body, err = readBody(c.Request(), (*body)[:0]); err != nil {
		return err
	}
	req, err := parseBatchOn(*body, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	for i, p := range req.points {
		if err := gridmap.CheckLonLat(p[0], p[1]); err != nil {
			return gridmap.Errorf(gridmap.EINVALID, "points[%d]: %s", i, gridmap.ErrorMessage(err))
		}
	}
	if _, _, err := geo.ToWGS84(req.crs, 0, 0); err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := gridmap.LookupQuery{Layer: req.layer, ToleranceM: req.tolerance, AccuracyM: req.accuracy, At: req.at}
	anonymous := callerOf(c).Kind == gridmap.CallerAnonymous
	// Check the query once (unknown layer, bad tolerance) before fanning out.
	if len(req.points) > 0 {
		var probe gridmap.LookupAnswer
		probeQ := q
		probeQ.Lon, probeQ.Lat, _ = geo.ToWGS84(req.crs, req.points[0][0], req.points[0][1])
		if err := s.deps.Locator.Lookup(ctx, probeQ, &probe); err != nil {
			return err
		}
	}
	if req.at != nil {
		return s.answerHistory(c, q, req, anonymous)
	}
	if len(req.points) >= s.spaceOrderFrom {
		return s.answerInSpaceOrder(c, q, req, anonymous)
	}
	return s.streamBatch(c, q, req, anonymous)
}

// readBody appends the request's body to b. Its Content-Length sizes the
// buffer up to bodyPrealloc only: a client may promise 64 MB and then send
// nothing, so memory goes to what arrives.
func readBody(r *http.Request, b []byte) ([]byte, error) {
	if n := r.ContentLength; n > 0 && int64(cap(b)) < n+1 {
		b = make([]byte, 0, min(n+1, bodyPrealloc)) // +1: the read that finds the end
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// chunkAnswer is one chunk's answers, or why it has none, and what their
// buffer grew beyond their least.
type chunkAnswer struct {
	buf   *[]byte
	grown int64
	err   error
}

// streamBatch answers the points from the index on every core, chunk by
// chunk, and writes the chunks in order as they are ready, at most a few
// chunks a worker ahead of the writer. An error in the first chunk is
// answered as such; one after the answer began (the layer deleted
// meanwhile) aborts the connection, so that the client cannot take a cut
// answer for a whole one.
//
// The chunks answered and not yet written, at most ahead's capacity, hold
// room in answersHeld: a batch without room for their least (answerHolds
// a point) is told to retry; what their buffers grew beyond is added as
// they are answered, room or not, and given back as they are written.
func (s *Server) streamBatch(c echo.Context, q gridmap.LookupQuery, req *batchRequest, anonymous bool) error {
	start := time.Now()
	out := make([]chan chunkAnswer, (len(req.points)+batchChunk-1)/batchChunk)
	for k := range out {
		out[k] = make(chan chunkAnswer, 1)
	}
	workers := min(runtime.GOMAXPROCS(0), len(out))
	ahead := make(chan struct{}, 4*workers)
	room, caller := s.answersHeld.Load(), callerKey(c, callerOf(c))
	least := int64(min(len(req.points), cap(ahead)*batchChunk)) * answerHolds
	if err := room.take(caller, 0, least); err != nil {
		return err
	}
	var grown atomic.Int64 // beyond least, held by chunks not yet written
	var wg sync.WaitGroup
	done := make(chan struct{})
	// The workers stop at their chunk's next lookup once the answer ends,
	// and give their room back with the batch's.
	ctx, cancel := context.WithCancel(c.Request().Context())
	defer func() {
		close(done)
		cancel()
		wg.Wait()
		room.giveBack(caller, least+grown.Load())
	}()
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans gridmap.LookupAnswer
			for {
				select {
				case ahead <- struct{}{}:
				case <-done:
					return
				}
				select {
				case <-done:
					return
				default:
				}
				k := int(next.Add(1) - 1)
				if k >= len(out) {
					return
				}
				n := min(batchChunk, len(req.points)-k*batchChunk)
				buf := chunkBuffer(n)
				err := unpanicked(func() (err error) {
					*buf, err = s.answerChunk(ctx, q, req, k, &ans, anonymous, *buf)
					return err
				})
				g := grownBeyond(*buf, n)
				room.add(caller, g)
				grown.Add(g)
				out[k] <- chunkAnswer{buf, g, err}
			}
		}()
	}
	w := c.Response()
	for k := range out {
		a := <-out[k]
		if a.err != nil {
			if k == 0 {
				return a.err
			}
			s.logger.Error("batch lookup failed after its answer began; connection aborted", "request_id", requestID(c), "err", a.err)
			// The abort unwinds past the request's own count: counted here,
			// as the failure it is.
			s.metrics.observe(c.Request().Method, c.Path(), http.StatusInternalServerError, time.Since(start))
			panic(http.ErrAbortHandler)
		}
		if k == 0 {
			w.Header()[echo.HeaderContentType] = jsonContentType
			w.WriteHeader(http.StatusOK)
			if _, err := io.WriteString(w, `{"results":[`); err != nil {
				return nil // the client went away; nothing left to tell it
			}
		}
		_, err := w.Write(*a.buf)
		room.giveBack(caller, a.grown)
		grown.Add(-a.grown)
		putChunkBuffer(a.buf)
		if err != nil {
			return nil
		}
		<-ahead
	}
	if len(out) == 0 {
		w.Header()[echo.HeaderContentType] = jsonContentType
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"results":[`)
	}
	_, _ = io.WriteString(w, `]}`)
	return nil
}

// answerHistory answers a batch as of a time, from PostGIS one point after
// another, whole before its first byte is written: an error anywhere is
// answered as such.
func (s *Server) answerHistory(c echo.Context, q gridmap.LookupQuery, req *batchRequest, anonymous bool) error {
	// Its answer holds room from the start, answerHolds a point, then as
	// much as its buffer grows to, while there is room.
	room, caller := s.answersHeld.Load(), callerKey(c, callerOf(c))
	held := int64(len(req.points)) * answerHolds
	if err := room.take(caller, 0, held); err != nil {
		return err
	}
	defer func() { room.giveBack(caller, held) }()
	var ans gridmap.LookupAnswer
	body := make([]byte, 0, held)
	for k := 0; k*batchChunk < len(req.points); k++ {
		var err error
		if body, err = s.answerChunk(c.Request().Context(), q, req, k, &ans, anonymous, body); err != nil {
			return err
		}
		if err := room.take(caller, held, int64(cap(body))-held); err != nil {
			return err
		}
		held = max(held, int64(cap(body)))
	}
	size := len(`{"results":[]}`) + len(body)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(size))
	c.Response().WriteHeader(http.StatusOK)
	w := c.Response()
	if _, err := io.WriteString(w, `{"results":[`); err != nil {
		return nil // the client went away; nothing left to tell it
	}
	if _, err := w.Write(body); err != nil {
		return nil
	}
	_, _ = io.WriteString(w, `]}`)
	return nil
}

// answerChunk appends to buf the answers to points [k*batchChunk,
// (k+1)*batchChunk), each followed by a comma except the very last point
// of the batch.
func (s *Server) answerChunk(ctx context.Context, q gridmap.LookupQuery, req *batchRequest, k int, ans *gridmap.LookupAnswer, anonymous bool, buf []byte) ([]byte, error) {
	lo, hi := k*batchChunk, min((k+1)*batchChunk, len(req.points))
	for i := lo; i < hi; i++ {
		var err error
		if buf, err = s.appendAnswer(ctx, q, req.crs, req.points[i], ans, anonymous, buf); err != nil {
			return nil, err
		}
		if i+1 < len(req.points) {
			buf = append(buf, ',')
		}
	}
	return buf, nil
}

// appendAnswer appends to buf the answer to point p of a batch in crs.
// Anonymous callers get no people.
func (s *Server) appendAnswer(ctx context.Context, q gridmap.LookupQuery, crs string, p [2]float64, ans *gridmap.LookupAnswer, anonymous bool, buf []byte) ([]byte, error) {
	q.Lon, q.Lat, _ = geo.ToWGS84(crs, p[0], p[1])
	if err := s.deps.Locator.Lookup(ctx, q, ans); err != nil {
		return buf, err
	}
	if anonymous {
		ans.ForgetPeople()
	}
	return AppendLookupJSON(buf, ans, p[0], p[1], crs), nil
}
