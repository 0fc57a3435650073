package server

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"

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
func (s *Server) handleLookup(c echo.Context) error {
	lon, err := floatParam(c, "lon", true)
	if err != nil {
		return err
	}
	lat, err := floatParam(c, "lat", true)
	if err != nil {
		return err
	}
	if err := gridmap.CheckLonLat(lon, lat); err != nil {
		return err
	}
	q := gridmap.LookupQuery{Layer: c.QueryParam("layer")}
	if v := c.QueryParam("tolerance_m"); v != "" {
		t, err := floatParam(c, "tolerance_m", false)
		if err != nil {
			return err
		}
		q.ToleranceM = &t
	}
	if q.AccuracyM, err = floatParam(c, "accuracy_m", false); err != nil {
		return err
	}
	if v := c.QueryParam("at"); v != "" {
		t, err := parseTime("at", v)
		if err != nil {
			return err
		}
		q.At = &t
	}
	crs := c.QueryParam("crs")
	if q.Lon, q.Lat, err = geo.ToWGS84(crs, lon, lat); err != nil {
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
	sc.buf = AppendLookupJSON(sc.buf[:0], &sc.answer, lon, lat, crs)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sc.buf)
}

// floatParam reads a query parameter as a number; "" is 0 unless required.
func floatParam(c echo.Context, name string, required bool) (float64, error) {
	v := c.QueryParam(name)
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

// handleLookupBatch answers up to gridmap.MaxLookupPoints points in input
// order: POST /v1/lookup {"points": [[lon, lat], ...], "crs", "layer",
// "tolerance_m", "accuracy_m", "at"} -> {"results": [...]}. A bad point
// fails the whole batch with its index; nothing is answered in part.
func (s *Server) handleLookupBatch(c echo.Context) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err
	}
	req, err := parseBatch(body)
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

	chunks := make([][]byte, (len(req.points)+batchChunk-1)/batchChunk)
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	if req.at != nil {
		workers = min(workers, 1) // history lookups go to PostGIS one by one
	}
	var next int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ans gridmap.LookupAnswer
			for {
				mu.Lock()
				k := int(next)
				next++
				stop := firstErr != nil
				mu.Unlock()
				if stop || k >= len(chunks) {
					return
				}
				buf, err := s.answerChunk(ctx, q, req, k, &ans, anonymous)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				chunks[k] = buf
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	size := len(`{"results":[]}`)
	for _, b := range chunks {
		size += len(b)
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	h.Set(echo.HeaderContentLength, strconv.Itoa(size))
	c.Response().WriteHeader(http.StatusOK)
	w := c.Response()
	if _, err := io.WriteString(w, `{"results":[`); err != nil {
		return nil // the client went away; nothing left to tell it
	}
	for _, b := range chunks {
		if _, err := w.Write(b); err != nil {
			return nil
		}
	}
	_, _ = io.WriteString(w, `]}`)
	return nil
}

// answerChunk answers points [k*batchChunk, (k+1)*batchChunk), each
// followed by a comma except the very last point of the batch.
// Anonymous callers get no people.
func (s *Server) answerChunk(ctx context.Context, q gridmap.LookupQuery, req *batchRequest, k int, ans *gridmap.LookupAnswer, anonymous bool) ([]byte, error) {
	lo, hi := k*batchChunk, min((k+1)*batchChunk, len(req.points))
	buf := make([]byte, 0, (hi-lo)*256)
	for i := lo; i < hi; i++ {
		p := req.points[i]
		q.Lon, q.Lat, _ = geo.ToWGS84(req.crs, p[0], p[1])
		if err := s.deps.Locator.Lookup(ctx, q, ans); err != nil {
			return nil, err
		}
		if anonymous {
			ans.ForgetPeople()
		}
		buf = AppendLookupJSON(buf, ans, p[0], p[1], req.crs)
		if i+1 < len(req.points) {
			buf = append(buf, ',')
		}
	}
	return buf, nil
}
