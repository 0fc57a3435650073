package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

// TestSpaceOrder: every point once, neighbours after one another, and
// batches with no extent in one or both axes kept in their own order.
func TestSpaceOrder(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	walk := func(pts [][2]float64) (d float64) {
		for i := 1; i < len(pts); i++ {
			d += math.Hypot(pts[i][0]-pts[i-1][0], pts[i][1]-pts[i-1][1])
		}
		return d
	}
	scattered := make([][2]float64, 50_000)
	for i := range scattered {
		scattered[i] = [2]float64{116 + rnd.Float64(), 39 + rnd.Float64()/2}
	}
	order, sorted := spaceOrder(scattered)
	if len(order) != len(scattered) || len(sorted) != len(scattered) {
		t.Fatalf("%d places and %d points for %d points", len(order), len(sorted), len(scattered))
	}
	seen := make([]bool, len(scattered))
	for j, i := range order {
		if seen[i] {
			t.Fatalf("point %d comes twice", i)
		}
		seen[i] = true
		if sorted[j] != scattered[i] {
			t.Fatalf("place %d holds %v, want point %d's %v", j, sorted[j], i, scattered[i])
		}
	}
	// Walking the points in space order is far shorter than in theirs.
	if in, space := walk(scattered), walk(sorted); space > in/20 {
		t.Errorf("a walk in space order is %.1f degrees, in input order %.1f", space, in)
	}

	line := [][2]float64{{120, 30.3}, {120, 30.1}, {120, 30.2}, {120, 30.1}}
	if order, _ := spaceOrder(line); !slices.Equal(order, []int32{1, 3, 2, 0}) {
		t.Errorf("points on a meridian in order %v, want [1 3 2 0]", order)
	}
	same := [][2]float64{{120, 30}, {120, 30}, {120, 30}}
	if order, _ := spaceOrder(same); !slices.Equal(order, []int32{0, 1, 2}) {
		t.Errorf("one place three times in order %v, want [0 1 2]", order)
	}
	if order, sorted := spaceOrder(nil); order != nil || sorted != nil {
		t.Errorf("no points: %v %v", order, sorted)
	}
}

// pointLocator answers each point with a grid named after it, and holds
// lookups of longitude 9 until hold is closed.
type pointLocator struct{ hold chan struct{} }

func (l pointLocator) Lookup(ctx context.Context, q gridmap.LookupQuery, dst *gridmap.LookupAnswer) error {
	if q.Lon == 9 {
		select {
		case <-l.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	dst.Reset()
	dst.Lon, dst.Lat = q.Lon, q.Lat
	la := dst.AddLayer("demo", 1)
	la.Chain = append(la.Chain, gridmap.GridRef{Code: strconv.FormatFloat(q.Lon, 'f', -1, 64) + "/" + strconv.FormatFloat(q.Lat, 'f', -1, 64), Level: "grid", Version: 1})
	return nil
}

// TestBatchesFromManyClients: eight clients post batches at once, large
// ones answered in space order and small ones streamed, each answered in
// its own order; while every slot for large batches is held, another waits
// until its client gives up, and the slots are all free again after.
func TestBatchesFromManyClients(t *testing.T) {
	loc := pointLocator{hold: make(chan struct{})}
	s := New(Config{PublicRead: true}, Deps{Locator: loc}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	post := func(ctx context.Context, body string) (int, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/lookup", strings.NewReader(body))
		req.Header.Set(noAuth[0], "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}
	// batch is a body of n points in no order and the answer it must get.
	batch := func(rnd *rand.Rand, n int) (string, string) {
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
			if err := loc.Lookup(context.Background(), gridmap.LookupQuery{Lon: lon, Lat: lat}, &ans); err != nil {
				t.Fatal(err)
			}
			want.Write(AppendLookupJSON(nil, &ans, lon, lat, ""))
		}
		body.WriteString("]}")
		want.WriteString("]}")
		return body.String(), want.String()
	}

	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(c), 7))
			for round := range 3 {
				n := spaceOrderFrom + rnd.IntN(12_000)
				if (c+round)%3 == 0 {
					n = 1 + rnd.IntN(spaceOrderFrom-1)
				}
				body, want := batch(rnd, n)
				status, got, err := post(context.Background(), body)
				if err != nil || status != 200 || got != want {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Errorf("client %d, batch of %d: %d %v, answers differ from byte %d: %.120q want %.120q", c, n, status, err, i, got[i:], want[min(i, len(want)):])
				}
			}
		})
	}
	wg.Wait()

	// Hold every slot with a batch whose lookups wait (past the first
	// point, which is looked up alone to check the query before the batch
	// takes a slot).
	held := `{"layer":"demo","points":[[8,30],` + strings.Repeat("[9,30],", spaceOrderFrom) + `[9,30]]}`
	results := make(chan string, cap(s.spaceSlots))
	for range cap(s.spaceSlots) {
		go func() {
			status, got, err := post(context.Background(), held)
			results <- fmt.Sprintf("%d %v %.40s", status, err, got)
		}()
	}
	defer func() {
		select {
		case <-loc.hold:
		default:
			close(loc.hold) // a check failed before the held batches were let go
		}
	}()
	eventually(t, "every slot held", func() bool { return len(s.spaceSlots) == cap(s.spaceSlots) })
	body, _ := batch(rand.New(rand.NewPCG(9, 9)), spaceOrderFrom)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if status, got, err := post(ctx, body); err == nil {
		t.Errorf("a batch with every slot held was answered: %d %.80s", status, got)
	}
	close(loc.hold)
	for range cap(s.spaceSlots) {
		if r := <-results; !strings.HasPrefix(r, `200 <nil> {"results":[{"lon":8,"lat":30`) {
			t.Errorf("a held batch, once let go: %s", r)
		}
	}
	eventually(t, "every slot free", func() bool { return len(s.spaceSlots) == 0 })
	body, want := batch(rand.New(rand.NewPCG(9, 10)), spaceOrderFrom+1)
	if status, got, err := post(context.Background(), body); status != 200 || err != nil || got != want {
		t.Errorf("after the slots were let go: %d %v %.80s", status, err, got)
	}
}
