package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// fixedLocator answers every point with one grid of layer "demo".
type fixedLocator struct{}

func (fixedLocator) Lookup(_ context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	dst.Reset()
	dst.Lon, dst.Lat = q.Lon, q.Lat
	l := dst.AddLayer("demo", 7)
	l.Chain = append(l.Chain, gridmap.GridRef{Code: "330106001", Name: "北山街道", Level: "street", Version: 2})
	return nil
}

// reusedWriter is a ResponseWriter that costs nothing per request.
type reusedWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *reusedWriter) Header() http.Header         { return w.h }
func (w *reusedWriter) WriteHeader(status int)      { w.status = status }
func (w *reusedWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// TestLookupGetLean: a GET /v1/lookup allocates nothing to read its query
// and write its answer, and the middleware keeps doing its work: an id on
// every answer and in error bodies and logs, every request counted, no log
// line for a lookup that succeeds.
func TestLookupGetLean(t *testing.T) {
	var logs bytes.Buffer
	s := New(Config{PublicRead: true}, Deps{Locator: fixedLocator{}}, slog.New(slog.NewJSONHandler(&logs, nil)))
	h := s.Handler()
	get := func(query string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v1/lookup?"+query, nil))
		return w
	}

	t.Run("query and answer without allocations", func(t *testing.T) {
		sc := &lookupScratch{buf: make([]byte, 0, 1024)}
		fixedLocator{}.Lookup(context.Background(), gridmap.LookupQuery{Lon: 120.005, Lat: 30.005}, &sc.answer)
		raw := "layer=demo&lon=120.005&lat=30.005&tolerance_m=5&accuracy_m=10&crs=wgs84"
		allocs := testing.AllocsPerRun(100, func() {
			p := readLookupParams(raw)
			lon, _ := numberParam("lon", p.lon, true)
			lat, _ := numberParam("lat", p.lat, true)
			sc.buf = AppendLookupJSON(sc.buf[:0], &sc.answer, lon, lat, p.crs)
		})
		if allocs != 0 {
			t.Errorf("%v allocations", allocs)
		}
	})
	t.Run("success: an id, counted, not logged", func(t *testing.T) {
		logs.Reset()
		w := get("layer=demo&lon=120.005&lat=30.005")
		if w.Code != 200 || len(w.Header().Get(echo.HeaderXRequestID)) != 32 || logs.Len() != 0 {
			t.Errorf("%d id %q logged %q", w.Code, w.Header().Get(echo.HeaderXRequestID), logs.String())
		}
		if other := get("layer=demo&lon=120.005&lat=30.005"); other.Header().Get(echo.HeaderXRequestID) == w.Header().Get(echo.HeaderXRequestID) {
			t.Error("two requests have the same id")
		}
	})
	t.Run("error: the id in the body and the log", func(t *testing.T) {
		logs.Reset()
		w := get("layer=demo&lon=abc&lat=30")
		var body errorBody
		json.Unmarshal(w.Body.Bytes(), &body)
		id := w.Header().Get(echo.HeaderXRequestID)
		if w.Code != 400 || body.Error.RequestID != id || id == "" || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) ||
			!strings.Contains(logs.String(), `"status":400`) {
			t.Errorf("%d %s, logged %s", w.Code, w.Body, logs.String())
		}
	})
	t.Run("metrics count both", func(t *testing.T) {
		w := httptest.NewRecorder()
		s.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		for _, want := range []string{`gridmap_http_requests_total{method="GET",route="/v1/lookup",status="200"} 2`,
			`gridmap_http_requests_total{method="GET",route="/v1/lookup",status="400"} 1`,
			`gridmap_http_request_duration_seconds_count{method="GET",route="/v1/lookup"} 3`} {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// FuzzLookupParams: the lookup reads its parameters as echo's QueryParam
// (url.ParseQuery's first value) would, and the unstorable-text check sees
// every value url.ParseQuery reads.
func FuzzLookupParams(f *testing.F) {
	for _, s := range []string{"lon=1&lat=2", "lon=1&lon=2&lat=%33", "l%6Fn=1;x&lat=2", "lat=&lat=3&at=2026-01-01T00:00:00Z",
		"crs=gcj%30%32+&layer=a+b&tolerance_m=%zz&accuracy_m=4", "&&=&lon", "layer=%00", strings.Repeat("a&", maxQueryPairs) + "lon=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		std, _ := url.ParseQuery(raw)
		p := readLookupParams(raw)
		for name, got := range map[string]string{"lon": p.lon, "lat": p.lat, "layer": p.layer, "crs": p.crs,
			"tolerance_m": p.tolerance, "accuracy_m": p.accuracy, "at": p.at} {
			if want := std.Get(name); got != want {
				t.Fatalf("%s: %q, url.ParseQuery reads %q in %q", name, got, want, raw)
			}
		}
		seen := url.Values{}
		q := newQueryPairs(raw)
		for k, v, ok := q.next(); ok; k, v, ok = q.next() {
			seen[k] = append(seen[k], v)
		}
		if len(seen) != len(std) {
			t.Fatalf("%d names, url.ParseQuery reads %d in %q", len(seen), len(std), raw)
		}
		for k, vs := range std {
			if strings.Join(seen[k], "\x00") != strings.Join(vs, "\x00") || len(seen[k]) != len(vs) {
				t.Fatalf("%s: %q, url.ParseQuery reads %q in %q", k, seen[k], vs, raw)
			}
		}
	})
}

// BenchmarkLookupGetInProcess is GET /v1/lookup through the whole
// middleware stack without the network, over an index of one grid: what
// gridmap adds per request around its lookup.
func BenchmarkLookupGetInProcess(b *testing.B) {
	s := New(Config{PublicRead: true}, Deps{Locator: fixedLocator{}}, slog.New(slog.DiscardHandler))
	h := s.Handler()
	req := httptest.NewRequest("GET", "/v1/lookup?layer=demo&lon=120.005&lat=30.005", nil)
	w := &reusedWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
}

// failingLocator fails for points at longitude 7, as the index would for
// a layer deleted in the middle of a batch, and panics at longitude 6.
type failingLocator struct{ fixedLocator }

func (l failingLocator) Lookup(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	if q.Lon == 6 {
		panic("a lookup at longitude 6")
	}
	if q.Lon == 7 {
		return gridmap.Errorf(gridmap.ENOTFOUND, `layer "demo" does not exist`)
	}
	return l.fixedLocator.Lookup(ctx, q, dst)
}

// TestLookupBatchNeverAnswersInPart: a streamed batch whose lookups fail
// once its answer is under way ends without a whole answer (the connection
// is aborted); one that fails in its first chunk is answered as an error,
// and so is a batch answered in space order wherever it fails, as nothing
// of it is written before every point is answered.
func TestLookupBatchNeverAnswersInPart(t *testing.T) {
	s := New(Config{PublicRead: true}, Deps{Locator: failingLocator{}}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	// The bad point, at longitude 7, lies among the others at the
	// longitudes given in turn: east of them all it comes last in space
	// order, after every other chunk is answered; west of them all, first,
	// while the other chunks are answered; between them, in the middle.
	batch := func(n, bad int, others ...string) string {
		if len(others) == 0 {
			others = []string{"3"}
		}
		pts := make([]string, n)
		for i := range pts {
			pts[i] = "[" + others[i%len(others)] + ",30.005]"
		}
		pts[bad] = "[7,30.005]"
		return `{"layer":"demo","points":[` + strings.Join(pts, ",") + `]}`
	}
	post := func(body string) (int, []byte, error) {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/lookup", strings.NewReader(body))
		req.Header.Set(noAuth[0], "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	streamed := defaultSpaceOrderFrom - 1
	if status, body, err := post(batch(streamed, 100)); status != 404 || err != nil || !strings.Contains(string(body), "does not exist") {
		t.Errorf("streamed, failing in the first chunk: %d %v %.200s", status, err, body)
	}
	if status, body, err := post(batch(streamed, streamed-10)); err == nil {
		t.Errorf("streamed, failing in a later chunk: %d, %d bytes read without an error", status, len(body))
	}
	for _, others := range [][]string{{"3"}, {"8"}, {"3", "11"}} {
		for _, bad := range []int{1, 15_000, 19_999} {
			if status, body, err := post(batch(20_000, bad, others...)); status != 404 || err != nil || !strings.Contains(string(body), "does not exist") {
				t.Errorf("in space order, failing at point %d among points at longitudes %v: %d %v %.200s", bad, others, status, err, body)
			}
		}
	}
	if status, body, err := post(`{"layer":"demo","points":[[120.005,30.005]]}`); status != 200 || err != nil ||
		!strings.HasPrefix(string(body), `{"results":[{"lon":120.005`) {
		t.Errorf("after the failures: %d %v %.200s", status, err, body)
	}
	// A lookup that panics fails its batch too, a chunk's worker being
	// no request's goroutine.
	panics := func(n, bad int) string {
		return strings.Replace(batch(n, bad), "[7,30.005]", "[6,30.005]", 1)
	}
	for _, n := range []int{100, 20_000} {
		if status, body, err := post(panics(n, n/2)); status != 500 || err != nil {
			t.Errorf("%d points, one whose lookup panics: %d %v %.200s", n, status, err, body)
		}
	}
	if status, body, err := post(panics(streamed, streamed-10)); err == nil {
		t.Errorf("streamed, a lookup panicking in a later chunk: %d, %d bytes read without an error", status, len(body))
	}
	if !s.batchPoints.TryAcquire(gridmap.MaxLookupPoints) {
		t.Errorf("the failed batches still hold their points")
	} else {
		s.batchPoints.Release(gridmap.MaxLookupPoints)
	}
	eventually(t, "the failed batches' answers given back", func() bool { return s.answersHeld.Load().bytes() == 0 })
}

// promising is a body that declares far more than it sends.
type promising struct{ sent bool }

func (p *promising) Read(b []byte) (int, error) {
	if p.sent {
		return 0, io.EOF
	}
	p.sent = true
	return copy(b, `{"points":[]}`), nil
}

// TestBatchBodyGrowsWithWhatArrives: a batch whose Content-Length promises
// 60 MB and sends a few bytes reserves no more than bodyPrealloc.
func TestBatchBodyGrowsWithWhatArrives(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/lookup", &promising{})
	r.ContentLength = 60 << 20
	b, err := readBody(r, nil)
	if err != nil || string(b) != `{"points":[]}` {
		t.Fatalf("read %q, %v", b, err)
	}
	if cap(b) > bodyPrealloc {
		t.Errorf("a body of 13 bytes promising 60 MB reserved %d bytes", cap(b))
	}
}

// TestMethodLabels: made-up methods are counted as OTHER, not each as a
// series of its own.
func TestMethodLabels(t *testing.T) {
	for m, want := range map[string]string{"GET": "GET", "POST": "POST", "OPTIONS": "OPTIONS", "M0": "OTHER", "get": "OTHER"} {
		if got := methodLabel(m); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", m, got, want)
		}
	}
}
