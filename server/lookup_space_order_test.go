package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

// pointLocator answers each point with a grid named after it (a long name
// from latitude longAnswersFrom on), and holds
// lookups of longitude 9 until hold is closed, whatever their deadline. It
// counts the lookups it answers, those it holds, and the held ones whose
// context ended while they were held.
type pointLocator struct {
	hold                 chan struct{}
	answers, held, ended *atomic.Int64
}

func newPointLocator() pointLocator {
	return pointLocator{hold: make(chan struct{}), answers: new(atomic.Int64), held: new(atomic.Int64), ended: new(atomic.Int64)}
}

func (l pointLocator) Lookup(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	l.answers.Add(1)
	if q.Lon == 9 {
		l.held.Add(1)
		select {
		case <-l.hold:
		case <-ctx.Done():
			l.ended.Add(1)
			<-l.hold
		}
	}
	dst.Reset()
	dst.Lon, dst.Lat = q.Lon, q.Lat
	la := dst.AddLayer("demo", 1)
	code := strconv.FormatFloat(q.Lon, 'f', -1, 64) + "/" + strconv.FormatFloat(q.Lat, 'f', -1, 64)
	if q.Lat >= longAnswersFrom {
		code = strings.Repeat("n", 400) + code
	}
	la.Chain = append(la.Chain, gridmap.GridRef{Code: code, Level: "grid", Version: 1})
	return nil
}

// longAnswersFrom is the latitude from which a pointLocator's answers are
// longer than answerHolds, so that their buffers grow.
const longAnswersFrom = 60

// batchServer serves batch lookups from a pointLocator, logging into logs.
type batchServer struct {
	s    *Server
	url  string
	loc  pointLocator
	logs *lockedBuffer
}

func newBatchServer(t *testing.T, cfg Config, configure ...func(*http.Server)) *batchServer {
	bs := &batchServer{loc: newPointLocator(), logs: &lockedBuffer{}}
	cfg.PublicRead = true
	bs.s = New(cfg, Deps{Locator: bs.loc}, slog.New(slog.NewJSONHandler(bs.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	hs := httptest.NewUnstartedServer(bs.s.Handler())
	for _, c := range configure {
		c(hs.Config)
	}
	hs.Start()
	t.Cleanup(func() {
		bs.letGo()
		hs.Close()
	})
	bs.url = hs.URL
	return bs
}

// letGo lets the held lookups go on.
func (bs *batchServer) letGo() {
	select {
	case <-bs.loc.hold:
	default:
		close(bs.loc.hold)
	}
}

func (bs *batchServer) post(ctx context.Context, body string) (*http.Response, string, error) {
	return bs.postFrom(ctx, "", body)
}

// postFrom posts as a client at address addr behind a proxy (a server
// that trusts loopback's) when addr is not "".
func (bs *batchServer) postFrom(ctx context.Context, addr, body string) (*http.Response, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", bs.url+"/v1/lookup", strings.NewReader(body))
	req.Header.Set(noAuth[0], "1")
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

// batch is a body of n points in no order and the answer it must get.
func (bs *batchServer) batch(t *testing.T, rnd *rand.Rand, n int) (string, string) {
	return bs.batchAt(t, rnd, n, 30)
}

// batchAt is batch with the points between latitudes lat and lat+1.
func (bs *batchServer) batchAt(t *testing.T, rnd *rand.Rand, n int, lat0 float64) (string, string) {
	var body, want strings.Builder
	body.WriteString(`{"layer":"demo","points":[`)
	want.WriteString(`{"results":[`)
	var ans gridmap.LookupAnswer
	for i := range n {
		lon, lat := 120+float64(rnd.IntN(100_000))/1e5, lat0+float64(rnd.IntN(100_000))/1e5
		if i > 0 {
			body.WriteByte(',')
			want.WriteByte(',')
		}
		fmt.Fprintf(&body, "[%s,%s]", strconv.FormatFloat(lon, 'f', -1, 64), strconv.FormatFloat(lat, 'f', -1, 64))
		if err := bs.loc.Lookup(context.Background(), gridmap.LookupQuery{Lon: lon, Lat: lat}, &ans); err != nil {
			t.Fatal(err)
		}
		want.Write(AppendLookupJSON(nil, &ans, lon, lat, ""))
	}
	body.WriteString("]}")
	want.WriteString("]}")
	return body.String(), want.String()
}

// hold posts a batch of every point large batches may have at once, whose
// lookups wait until letGo (past its first point, looked up alone to check
// the query before the batch waits its turn), and waits until it holds
// them. Its answer arrives on the channel returned.
func (bs *batchServer) hold(t *testing.T) <-chan string {
	held := `{"layer":"demo","points":[[8,30]` + strings.Repeat(",[9,30]", gridmap.MaxLookupPoints-1) + `]}`
	done := make(chan string, 1)
	go func() {
		res, got, err := bs.post(context.Background(), held)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- fmt.Sprintf("%d %.40s", res.StatusCode, got)
	}()
	eventually(t, "every place taken", func() bool { return !bs.free(1) })
	return done
}

// free reports whether n points could be answered at once now.
func (bs *batchServer) free(n int64) bool {
	if bs.s.batchPoints.TryAcquire(n) {
		bs.s.batchPoints.Release(n)
		return true
	}
	return false
}

// requests counts the request lines logged for POST /v1/lookup.
func (bs *batchServer) requests() int {
	return strings.Count(bs.logs.String(), `"method":"POST","path":"/v1/lookup"`)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBatchesFromManyClients: eight clients post batches at once, large
// ones answered in space order (some a whole number of chunks), small ones
// streamed and some as of a time, some with answers that grow their
// buffers, each answered in its own order, the large and as-of ones with
// their length; then nothing is held.
func TestBatchesFromManyClients(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	bs := newBatchServer(t, Config{TrustedProxies: []*net.IPNet{loopback}})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 7))
			for round := range 4 {
				n := defaultSpaceOrderFrom + rnd.IntN(12_000)
				switch (c + round) % 3 {
				case 0:
					n = 1 + rnd.IntN(defaultSpaceOrderFrom-1)
				case 1:
					n = (n / batchChunk) * batchChunk
				}
				// Every fourth batch has answers longer than their
				// least, whose buffers grow; every fifth is as of a time.
				lat := 30.0
				if (c+round)%4 == 0 {
					lat = longAnswersFrom
				}
				body, want := bs.batchAt(t, rnd, n, lat)
				if (c+round)%5 == 0 {
					body = strings.Replace(body, `{"layer":"demo",`, `{"layer":"demo","at":"2026-01-01T00:00:00Z",`, 1)
				}
				res, got, err := bs.postFrom(context.Background(), fmt.Sprintf("10.0.1.%d", c), body)
				if err != nil || res.StatusCode != 200 || got != want {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Errorf("client %d, batch of %d: %v %v, answers differ from byte %d: %.120q want %.120q", c, n, res, err, i, got[i:], want[min(i, len(want)):])
					continue
				}
				if large := n >= defaultSpaceOrderFrom || strings.Contains(body, `"at":`); large != (res.ContentLength == int64(len(want))) {
					t.Errorf("client %d, batch of %d: Content-Length %d for %d bytes", c, n, res.ContentLength, len(want))
				}
			}
		})
	}
	wg.Wait()
	if logs := bs.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", logs)
	}
	eventually(t, "every batch's answers given back", func() bool { return bs.s.answersHeld.Load().bytes() == 0 })
}

// TestBatchesWaitTheirTurn: while a batch holds every point large batches
// may have at once, another waits. Its client giving up ends it at once,
// counted and logged as 499, not as an error (and so does a client giving
// up while its batch is answered, which then stops and gives its points
// back); its deadline passing answers 503 with Retry-After. Once the first
// is let go, a batch is answered again.
func TestBatchesWaitTheirTurn(t *testing.T) {
	t.Run("the client gives up", func(t *testing.T) {
		bs := newBatchServer(t, Config{})
		held := bs.hold(t)
		before := bs.requests()
		body, _ := bs.batch(t, rand.New(rand.NewPCG(9, 9)), defaultSpaceOrderFrom)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if res, got, err := bs.post(ctx, body); err == nil {
			t.Errorf("a batch waiting its turn was answered: %d %.80s", res.StatusCode, got)
		}
		// The request ends while the held batch still holds its place.
		eventually(t, "the request that waited ended", func() bool { return bs.requests() == before+1 })
		if logs := bs.logs.String(); !strings.Contains(logs, `"status":499`) {
			t.Errorf("a request whose client went away was not logged as 499:\n%s", logs)
		}
		bs.letGo()
		if r := <-held; !strings.HasPrefix(r, `200 {"results":[{"lon":8,"lat":30`) {
			t.Errorf("the held batch, once let go: %s", r)
		}
		body, want := bs.batch(t, rand.New(rand.NewPCG(9, 10)), defaultSpaceOrderFrom+1)
		if res, got, err := bs.post(context.Background(), body); err != nil || res.StatusCode != 200 || got != want {
			t.Errorf("after the held batch: %v %v %.80s", res, err, got)
		}
		if logs := bs.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("errors logged:\n%s", logs)
		}
	})
	t.Run("the client gives up while it is answered", func(t *testing.T) {
		bs := newBatchServer(t, Config{})
		before := bs.requests()
		ctx, cancel := context.WithCancel(context.Background())
		gone := make(chan error, 1)
		n := gridmap.MaxLookupPoints
		go func() {
			_, _, err := bs.post(ctx, `{"layer":"demo","points":[[8,30]`+strings.Repeat(",[9,30]", n-1)+`]}`)
			gone <- err
		}()
		eventually(t, "the batch answering", func() bool { return bs.loc.held.Load() > 0 })
		cancel()
		if err := <-gone; err == nil {
			t.Errorf("a batch whose client went away was answered")
		}
		// The server has seen the client go before the lookups go on.
		eventually(t, "the held lookups' context ended", func() bool { return bs.loc.ended.Load() > 0 })
		bs.letGo()
		eventually(t, "the request ended", func() bool { return bs.requests() == before+1 })
		if !bs.free(gridmap.MaxLookupPoints) {
			t.Errorf("the batch still holds its points")
		}
		// The chunks under way when the client went (one a worker, each
		// held at its first point) are finished, no more; and the query's
		// check before the batch, its first point alone.
		chunks := (n + batchChunk - 1) / batchChunk
		if looked, most := bs.loc.answers.Load(), int64(min(runtime.GOMAXPROCS(0), chunks)*batchChunk+1); looked > most {
			t.Errorf("%d of a batch's %d points were looked up after its client went away, at most %d were under way", looked, n, most)
		}
		if logs := bs.logs.String(); !strings.Contains(logs, `"status":499`) {
			t.Errorf("a request whose client went away was not logged as 499:\n%s", logs)
		}
		if logs := bs.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("errors logged:\n%s", logs)
		}
	})
	t.Run("its deadline passes", func(t *testing.T) {
		bs := newBatchServer(t, Config{RequestTimeout: time.Second})
		held := bs.hold(t)
		body, _ := bs.batch(t, rand.New(rand.NewPCG(9, 11)), defaultSpaceOrderFrom)
		res, got, err := bs.post(context.Background(), body)
		if err != nil || res.StatusCode != 503 || res.Header.Get("Retry-After") != retryAfter || !strings.Contains(got, "retry shortly") {
			t.Errorf("a batch whose deadline passed as it waited: %v %v %s", res, err, got)
		}
		bs.letGo()
		<-held // answered or not: its own deadline has passed too
		body, want := bs.batch(t, rand.New(rand.NewPCG(9, 12)), defaultSpaceOrderFrom)
		if res, got, err := bs.post(context.Background(), body); err != nil || res.StatusCode != 200 || got != want {
			t.Errorf("after the held batch: %v %v %.80s", res, err, got)
		}
	})
}

// TestSlowReadersHoldBoundedAnswers: a client that posts a batch and never
// reads its answer holds that answer. A batch that finds no room for the
// least it will hold (in all, or in its caller's share) is told to retry
// (503 with Retry-After) before it is answered, large or streamed or as of
// a time, and so is a large or as-of batch whose answer, once computed,
// grew past the room; one that finds room is answered. What is held shows
// on /metrics, counts the buffers answers grew, and is all given back when
// the slow clients go. A batch larger than the room is answered when it
// finds it empty.
func TestSlowReadersHoldBoundedAnswers(t *testing.T) {
	// Clients are told apart by the address a proxy on loopback gives.
	// The server's socket buffers a few pages of what it writes (it would
	// grow to megabytes), so that writing an answer to a client that reads
	// nothing blocks.
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	bs := newBatchServer(t, Config{TrustedProxies: []*net.IPNet{loopback}}, func(hs *http.Server) {
		hs.ConnState = func(c net.Conn, st http.ConnState) {
			if tc, ok := c.(*net.TCPConn); ok && st == http.StateNew {
				if err := tc.SetWriteBuffer(4096); err != nil {
					t.Errorf("the server's send buffer: %v", err)
				}
			}
		}
	})
	held := func() int64 {
		rec := httptestGet(bs.s.MetricsHandler(), "/metrics")
		for line := range strings.Lines(rec.Body.String()) {
			if v, ok := strings.CutPrefix(line, "gridmap_lookup_answers_held_bytes "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				return int64(n)
			}
		}
		t.Fatalf("no gridmap_lookup_answers_held_bytes in /metrics:\n%s", rec.Body)
		return 0
	}
	letGo := func(conn net.Conn, what string) {
		t.Helper()
		conn.Close()
		eventually(t, what+" let go", func() bool { return held() == 0 })
	}
	// Buffers grown before would be taken from the pool and counted at
	// their size: the collector empties it.
	runtime.GC()
	runtime.GC()
	rnd := rand.New(rand.NewPCG(21, 3))
	const slowAddr, otherAddr = "10.0.0.1", "10.0.0.2"
	body, want := bs.batch(t, rnd, defaultSpaceOrderFrom)
	// The least a batch of these points holds, and holds here (its
	// answers are shorter than answerHolds): its answers' and a few bytes
	// a point.
	least := int64(defaultSpaceOrderFrom) * (answerHolds + heldPerPoint)
	bs.s.answersHeld.Store(newRoom(least / 2))
	if res, got, err := bs.postFrom(context.Background(), slowAddr, body); err != nil || res.StatusCode != 200 || got != want {
		t.Fatalf("a batch whose answer is larger than the room, alone: %v %v %.80s", res, err, got)
	}
	eventually(t, "the batch's room given back", func() bool { return held() == 0 })

	slow := func(addr, body string) net.Conn {
		t.Helper()
		// The slow client reads nothing, through a receive buffer of a
		// page, so the server's writes of the answer soon block.
		dialer := net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
			var err error
			if cerr := c.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); cerr != nil {
				return cerr
			}
			return err
		}}
		conn, err := dialer.Dial("tcp", strings.TrimPrefix(bs.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := fmt.Fprintf(conn, "POST /v1/lookup HTTP/1.1\r\nHost: x\r\n%s: 1\r\nX-Forwarded-For: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			noAuth[0], addr, len(body), body); err != nil {
			t.Fatal(err)
		}
		// Its answer's head is written only once the answer holds its
		// room, and the answer cannot fit in the sockets' buffers: it
		// is held.
		status, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
			t.Fatalf("the slow client's answer: %q %v", status, err)
		}
		return conn
	}
	// A batch refused for want of room for its least is refused before
	// it is answered: only its first point is looked up, to check the
	// query. One refused as it grew has been answered, in part or whole.
	refusedAs := func(what, addr, body, why string, first bool) {
		t.Helper()
		before := bs.loc.answers.Load()
		res, got, err := bs.postFrom(context.Background(), addr, body)
		if err != nil || res.StatusCode != 503 || res.Header.Get("Retry-After") != retryAfter || !strings.Contains(got, why) {
			t.Errorf("%s: %v %v %.120s, want 503 saying %q", what, res, err, got, why)
		}
		if n := bs.loc.answers.Load() - before; first != (n == 1) {
			t.Errorf("%s: %d points looked up", what, n)
		}
	}
	refused := func(what, addr, body, why string) { t.Helper(); refusedAs(what, addr, body, why, true) }
	answered := func(what, addr, body, want string) {
		t.Helper()
		if res, got, err := bs.postFrom(context.Background(), addr, body); err != nil || res.StatusCode != 200 || got != want {
			t.Errorf("%s: %v %v %.80s", what, res, err, got)
		}
	}
	asOf := func(body string) string {
		return strings.Replace(body, `{"layer":"demo",`, `{"layer":"demo","at":"2026-01-01T00:00:00Z",`, 1)
	}
	const roomFull, callerFull = "waiting for their clients to read them", "this caller's batches"

	// Room for one and a half such batches, a quarter of it for one
	// caller: the slow client's batch, alone in its share, holds just its
	// least.
	room := least * 3 / 2
	bs.s.answersHeld.Store(newRoom(room))
	conn := slow(slowAddr, body)
	if got := held(); got != least {
		t.Errorf("a slow client's large batch holds %d bytes, want %d", got, least)
	}
	other, otherWant := bs.batch(t, rnd, defaultSpaceOrderFrom)
	refused("another caller's large batch", otherAddr, other, roomFull)
	streamed, streamedWant := bs.batch(t, rnd, defaultSpaceOrderFrom-1)
	refused("another caller's streamed batch of as many chunks", otherAddr, streamed, roomFull)
	small, smallWant := bs.batch(t, rnd, 100)
	answered("another caller's streamed batch of a hundred points", otherAddr, small, smallWant)
	answered("another caller's batch of a hundred points as of a time", otherAddr, asOf(small), smallWant)
	large, _ := bs.batch(t, rnd, int((room-least)/answerHolds)+1)
	refused("another caller's larger batch as of a time", otherAddr, asOf(large), roomFull)
	refused("the slow caller's batch of a hundred points", slowAddr, small, callerFull)
	answered("the slow caller's empty batch", slowAddr, `{"layer":"demo","points":[]}`, `{"results":[]}`)
	answered("the slow caller's empty batch as of a time", slowAddr, asOf(`{"layer":"demo","points":[]}`), `{"results":[]}`)
	if got := held(); got != least {
		t.Errorf("once the others are answered or refused, %d bytes are held, want the slow client's %d", got, least)
	}
	letGo(conn, "the slow client's answer")
	answered("a large batch once the slow client went", otherAddr, other, otherWant)

	// A streamed batch held by a slow reader holds its chunks answered
	// and not yet written, as many as its workers answer ahead: here all
	// of them.
	conn = slow(slowAddr, streamed)
	if got, want := held(), int64(defaultSpaceOrderFrom-1)*answerHolds; got != want {
		t.Errorf("a slow client's streamed batch holds %d bytes, want %d", got, want)
	}
	letGo(conn, "the slow client's streamed answer")
	answered("a streamed batch once the slow client went", otherAddr, streamed, streamedWant)

	// Answers longer than answerHolds grow their buffers: counted while
	// held, and a large or as-of batch whose answer grew past the room is
	// refused, its room given back.
	long, longWant := bs.batchAt(t, rnd, defaultSpaceOrderFrom, longAnswersFrom)
	bs.s.answersHeld.Store(newRoom(least*2 + least/5))
	conn = slow(slowAddr, body)
	refusedAs("a large batch whose answers grew past the room", otherAddr, long, roomFull, false)
	refusedAs("a batch as of a time whose answers grew past the room", otherAddr, asOf(long), roomFull, false)
	if got := held(); got != least {
		t.Errorf("after batches refused as they grew, %d bytes are held, want the slow client's %d", got, least)
	}
	letGo(conn, "the slow client's answer")
	bs.s.answersHeld.Store(newRoom(100 * least))
	conn = slow(slowAddr, long)
	if got := held(); got < int64(len(longWant)) {
		t.Errorf("a slow client's large batch of long answers holds %d bytes, less than the answers' %d", got, len(longWant))
	}
	letGo(conn, "the slow client's long answer")
	longStreamed, longStreamedWant := bs.batchAt(t, rnd, defaultSpaceOrderFrom-1, longAnswersFrom)
	conn = slow(slowAddr, longStreamed)
	if got := held(); got <= int64(defaultSpaceOrderFrom-1)*answerHolds {
		t.Errorf("a slow client's streamed batch of long answers holds %d bytes, no more than its least", got)
	}
	letGo(conn, "the slow client's long streamed answer")
	answered("a streamed batch of long answers once the slow client went", otherAddr, longStreamed, longStreamedWant)
	conn = slow(slowAddr, asOf(long))
	if got := held(); got < int64(len(longWant)) {
		t.Errorf("a slow client's batch of long answers as of a time holds %d bytes, less than the answers' %d", got, len(longWant))
	}
	letGo(conn, "the slow client's long answer as of a time")
	// Nothing but the refusals (503, logged as every one is) is an error.
	for line := range strings.Lines(bs.logs.String()) {
		if strings.Contains(line, `"level":"ERROR"`) && !strings.Contains(line, `"status":503`) {
			t.Errorf("error logged: %s", line)
		}
	}
}
