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

// pointLocator answers each point with a grid named after it, and holds
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
	la.Chain = append(la.Chain, gridmap.GridRef{Code: strconv.FormatFloat(q.Lon, 'f', -1, 64) + "/" + strconv.FormatFloat(q.Lat, 'f', -1, 64), Level: "grid", Version: 1})
	return nil
}

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
	req, _ := http.NewRequestWithContext(ctx, "POST", bs.url+"/v1/lookup", strings.NewReader(body))
	req.Header.Set(noAuth[0], "1")
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
	var body, want strings.Builder
	body.WriteString(`{"layer":"demo","points":[`)
	want.WriteString(`{"results":[`)
	var ans gridmap.LookupAnswer
	for i := range n {
		lon, lat := 120+float64(rnd.IntN(100_000))/1e5, 30+float64(rnd.IntN(100_000))/1e5
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
// ones answered in space order (some a whole number of chunks) and small
// ones streamed, each answered in its own order, the large ones with their
// length.
func TestBatchesFromManyClients(t *testing.T) {
	bs := newBatchServer(t, Config{})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 7))
			for round := range 3 {
				n := defaultSpaceOrderFrom + rnd.IntN(12_000)
				switch (c + round) % 3 {
				case 0:
					n = 1 + rnd.IntN(defaultSpaceOrderFrom-1)
				case 1:
					n = (n / batchChunk) * batchChunk
				}
				body, want := bs.batch(t, rnd, n)
				res, got, err := bs.post(context.Background(), body)
				if err != nil || res.StatusCode != 200 || got != want {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Errorf("client %d, batch of %d: %v %v, answers differ from byte %d: %.120q want %.120q", c, n, res, err, i, got[i:], want[min(i, len(want)):])
					continue
				}
				if large := n >= defaultSpaceOrderFrom; large != (res.ContentLength == int64(len(want))) {
					t.Errorf("client %d, batch of %d: Content-Length %d for %d bytes", c, n, res.ContentLength, len(want))
				}
			}
		})
	}
	wg.Wait()
	if logs := bs.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", logs)
	}
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

// TestSlowReadersHoldBoundedAnswers: a client that posts a large batch and
// never reads its answer holds that answer; once such answers fill the
// room large batches' answers may take, another large batch is told to
// retry (503 with Retry-After), small ones are still answered, and when the
// slow client goes the room is free again. A batch whose answer is larger
// than the room is answered when it finds it empty.
func TestSlowReadersHoldBoundedAnswers(t *testing.T) {
	// The server's socket buffers a few pages of what it writes (it
	// would grow to megabytes), so that writing an answer to a client
	// that reads nothing blocks.
	bs := newBatchServer(t, Config{}, func(hs *http.Server) {
		hs.ConnState = func(c net.Conn, st http.ConnState) {
			if tc, ok := c.(*net.TCPConn); ok && st == http.StateNew {
				if err := tc.SetWriteBuffer(4096); err != nil {
					t.Errorf("the server's send buffer: %v", err)
				}
			}
		}
	})
	rnd := rand.New(rand.NewPCG(21, 3))
	body, want := bs.batch(t, rnd, defaultSpaceOrderFrom)
	bs.s.answersHeld = newRoom(int64(len(want)) / 2)
	// The least a batch of these points holds: its answer's buffers as
	// the pool makes them (they may have grown), and a few bytes a point.
	// Room for one and a half: a second is refused.
	chunks := (defaultSpaceOrderFrom + batchChunk - 1) / batchChunk
	holds := int64(chunks*cap(*chunkBuffers.New().(*[]byte))) + defaultSpaceOrderFrom*heldPerPoint
	if res, got, err := bs.post(context.Background(), body); err != nil || res.StatusCode != 200 || got != want {
		t.Fatalf("a batch whose answer is larger than the room, alone: %v %v %.80s", res, err, got)
	}
	room := holds * 3 / 2
	bs.s.answersHeld = newRoom(room)

	// The slow client reads nothing, through a receive buffer of a page,
	// so the server's writes of the answer soon block.
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
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST /v1/lookup HTTP/1.1\r\nHost: x\r\n%s: 1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", noAuth[0], len(body), body); err != nil {
		t.Fatal(err)
	}
	// Its answer's head is written only once the answer holds its room,
	// and the answer cannot fit in the sockets' buffers: it is held.
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("the slow client's answer: %q %v", status, err)
	}
	other, otherWant := bs.batch(t, rnd, defaultSpaceOrderFrom)
	res, got, err := bs.post(context.Background(), other)
	if err != nil || res.StatusCode != 503 || res.Header.Get("Retry-After") != retryAfter || !strings.Contains(got, "waiting for their clients to read them") {
		t.Errorf("a large batch while a slow client holds the room: %v %v %.120s", res, err, got)
	}
	small, smallWant := bs.batch(t, rnd, defaultSpaceOrderFrom-1)
	if res, got, err := bs.post(context.Background(), small); err != nil || res.StatusCode != 200 || got != smallWant {
		t.Errorf("a small batch, streamed, while a slow client holds the room: %v %v %.80s", res, err, got)
	}

	conn.Close()
	eventually(t, "the slow client's answer let go", func() bool {
		took, ok := bs.s.answersHeld.take(room)
		if ok {
			bs.s.answersHeld.giveBack(took)
		}
		return ok
	})
	if res, got, err := bs.post(context.Background(), other); err != nil || res.StatusCode != 200 || got != otherWant {
		t.Errorf("a large batch once the slow client went: %v %v %.80s", res, err, got)
	}
	// Nothing but the refusals (503, logged as every one is) is an error.
	for line := range strings.Lines(bs.logs.String()) {
		if strings.Contains(line, `"level":"ERROR"`) && !strings.Contains(line, `"status":503`) {
			t.Errorf("error logged: %s", line)
		}
	}
}
