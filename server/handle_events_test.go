package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gridmap/gridmap/postgres/pgtest"
)

type sseEvent struct {
	id, event, data string
}

// openStream connects to /v1/events and delivers its events on a channel.
func openStream(t *testing.T, url, lastID string, header ...string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, err := connectStream(ctx, url, lastID, header...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return out, cancel
}

// connectStream connects to /v1/events, resuming after lastID unless it is
// "", and delivers the events on a channel closed when the stream ends (or
// ctx does). header pairs are sent with the request.
func connectStream(ctx context.Context, url, lastID string, header ...string) (<-chan sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		res.Body.Close()
		return nil, fmt.Errorf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.data != "" {
					select {
					case out <- e:
					case <-ctx.Done():
						return
					}
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.data = line[6:]
			}
		}
	}()
	return out, nil
}

// waitFor reads events until one satisfies match, or fails after 5 s.
func waitFor(t *testing.T, events <-chan sseEvent, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s within 5 s", what)
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("event id %q is not a number", s)
	}
	return n
}

func reportEvent(externalID, action string) func(sseEvent) bool {
	return func(e sseEvent) bool {
		var d struct {
			Event  struct{ Action string }
			Report struct {
				ExternalID string `json:"external_id"`
			}
		}
		return e.event == "report" && json.Unmarshal([]byte(e.data), &d) == nil && d.Report.ExternalID == externalID && d.Event.Action == action
	}
}

func TestEventStream(t *testing.T) {
	ts := newTestServer(t, Config{})
	rect := `{"type":"Polygon","coordinates":[[[122,31],[122.01,31],[122.01,31.01],[122,31.01],[122,31]]]}`
	for _, s := range []struct{ method, path, body string }{
		{"PUT", "/v1/layers/ev", `{"levels":["district","street"]}`},
		{"POST", "/v1/layers/ev/import", `{"type":"FeatureCollection","features":[` + feat("ED", "", rect) + "," + feat("EA", "ED", rect) + "]}"},
		{"PUT", "/v1/departments/ev", `{"name":"事件测试"}`},
		{"PUT", "/v1/categories/ev", `{"name":"事件测试","departments":["ev"],"limit":{"value":1,"clock":"urgent_hours"}}`},
	} {
		if r := do(t, s.method, ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=ev&lon=122.005&lat=31.005", "").body), `"EA"`)
	})

	events, stop := openStream(t, ts.url, "")
	defer stop()
	posted := time.Now()
	r := do(t, "POST", ts.url+"/v1/reports", `{"external_id":"ev-1","category":"ev","location":{"type":"Point","coordinates":[122.005,31.005]}}`)
	if r.status != 201 {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	created := waitFor(t, events, "the new report", reportEvent("ev-1", "report"))
	t.Logf("the stream delivered the new report %v after the POST", time.Since(posted).Round(time.Millisecond))

	t.Run("boundary changes are streamed", func(t *testing.T) {
		if r := do(t, "PUT", ts.url+"/v1/layers/ev/grids/EA/people", `{"people":[{"role":"grid_worker","name":"李明"}]}`); r.status != 200 {
			t.Fatalf("people: %d %s", r.status, r.body)
		}
		waitFor(t, events, "the boundary notice", func(e sseEvent) bool { return e.event == "boundary" && strings.Contains(e.data, `"ev"`) })
	})

	t.Run("a client resuming with Last-Event-ID gets what it missed", func(t *testing.T) {
		stop()
		var rep struct{ ID int64 }
		json.Unmarshal(r.body, &rep)
		if r := do(t, "POST", fmt.Sprintf("%s/v1/reports/%d/events", ts.url, rep.ID), `{"action":"register"}`); r.status != 200 {
			t.Fatalf("register: %d %s", r.status, r.body)
		}
		resumed, stop2 := openStream(t, ts.url, created.id)
		defer stop2()
		e := waitFor(t, resumed, "the missed registration", reportEvent("ev-1", "register"))
		if id, _ := strconv.ParseInt(e.id, 10, 64); id <= mustInt(t, created.id) {
			t.Errorf("resumed event id %s not after %s", e.id, created.id)
		}
	})
	if r := do(t, "GET", ts.url+"/v1/events?since=abc", ""); r.status != 400 {
		t.Errorf("bad since: %d", r.status)
	}
}

// put sends body with PUT, for goroutines that cannot fail the test.
func put(url, body string) error {
	req, err := http.NewRequest("PUT", url, strings.NewReader(body))
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("PUT %s: %d %s", url, res.StatusCode, b)
	}
	return nil
}

// feedClient is a client of /v1/events that reads a few events, hangs up
// and resumes with Last-Event-ID, again and again.
type feedClient struct {
	mu       sync.Mutex
	seen     []sseEvent
	connects int
}

func (c *feedClient) events() []sseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seen)
}

// follow reads from events (the connection hangUp ends) and then from new
// connections, each resuming after the last event seen, until stop closes.
func (c *feedClient) follow(ctx context.Context, url string, events <-chan sseEvent, hangUp func(), last string, rng *rand.Rand, stop <-chan struct{}) error {
	defer func() { hangUp() }()
	for {
		take := 1 + rng.IntN(8)
		idle := time.NewTimer(300 * time.Millisecond)
	read:
		for take > 0 {
			select {
			case e, ok := <-events:
				if !ok {
					return fmt.Errorf("stream after %s ended", last)
				}
				c.mu.Lock()
				c.seen = append(c.seen, e)
				c.mu.Unlock()
				last, take = e.id, take-1
			case <-idle.C:
				break read
			case <-stop:
				return nil
			}
		}
		idle.Stop()
		hangUp()
		conn, cancel := context.WithCancel(ctx)
		next, err := connectStream(conn, url, last)
		if err != nil {
			cancel()
			return err
		}
		c.mu.Lock()
		c.connects++
		c.mu.Unlock()
		events, hangUp = next, cancel
	}
}

// reportEventOf decodes a report event of the stream.
func reportEventOf(e sseEvent) (ev struct {
	ID       int64  `json:"id"`
	ReportID int64  `json:"report_id"`
	Actor    string `json:"actor"`
}, ok bool) {
	var d struct {
		Event *struct {
			ID       int64  `json:"id"`
			ReportID int64  `json:"report_id"`
			Actor    string `json:"actor"`
		} `json:"event"`
	}
	if e.event != "report" || json.Unmarshal([]byte(e.data), &d) != nil || d.Event == nil {
		return ev, false
	}
	return *d.Event, true
}

// Sixteen writers commit report events with pauses inside their
// transactions, so that ids are drawn in one order and committed in
// another; people changes come in between. Three clients hang up after a
// few events and resume with Last-Event-ID, again and again.
func TestEventStreamEveryEventOnceInOrder(t *testing.T) {
	const writers, transactions, clients, peopleChanges = 16, 6, 3, 10
	ts := newTestServer(t, Config{})
	db := pgtest.Shared(t)
	ctx := context.Background()
	rect := `{"type":"Polygon","coordinates":[[[123,32],[123.01,32],[123.01,32.01],[123,32.01],[123,32]]]}`
	for _, s := range []struct{ method, path, body string }{
		{"PUT", "/v1/layers/eo", `{"levels":["district","street"]}`},
		{"POST", "/v1/layers/eo/import", `{"type":"FeatureCollection","features":[` + feat("OD", "", rect) + "," + feat("OA", "OD", rect) + "]}"},
		{"PUT", "/v1/departments/eo", `{"name":"顺序测试"}`},
		{"PUT", "/v1/categories/eo", `{"name":"顺序测试","departments":["eo"],"limit":{"value":1,"clock":"urgent_hours"}}`},
	} {
		if r := do(t, s.method, ts.url+s.path, s.body); r.status/100 != 2 {
			t.Fatalf("%s: %d %s", s.path, r.status, r.body)
		}
	}
	eventually(t, "the layer reaches the index", func() bool {
		return strings.Contains(string(do(t, "GET", ts.url+"/v1/lookup?layer=eo&lon=123.005&lat=32.005", "").body), `"OA"`)
	})
	var reports []int64
	for i := range 8 {
		r := do(t, "POST", ts.url+"/v1/reports", fmt.Sprintf(`{"external_id":"eo-%d","category":"eo","location":{"type":"Point","coordinates":[123.005,32.005]}}`, i))
		var rep struct{ ID int64 }
		if r.status/100 != 2 || json.Unmarshal(r.body, &rep) != nil {
			t.Fatalf("report: %d %s", r.status, r.body)
		}
		reports = append(reports, rep.ID)
	}
	// Every client starts after a marker, before anything the test checks.
	probe, stopProbe := openStream(t, ts.url, "")
	if err := put(ts.url+"/v1/layers/eo/grids/OA/people", `{"people":[{"role":"grid_worker","name":"起点"}]}`); err != nil {
		t.Fatal(err)
	}
	start := waitFor(t, probe, "the marker", func(e sseEvent) bool {
		return e.event == "boundary" && strings.Contains(e.data, `"layer":"eo","kind":"people"`)
	}).id
	stopProbe()

	stop := make(chan struct{})
	followers := make([]*feedClient, clients)
	var following sync.WaitGroup
	followErrs := make(chan error, clients)
	for i := range followers {
		c := &feedClient{}
		followers[i] = c
		conn, hangUp := context.WithCancel(ctx)
		first, err := connectStream(conn, ts.url, start)
		if err != nil {
			hangUp()
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		following.Go(func() {
			if err := c.follow(ctx, ts.url, first, hangUp, start, rng, stop); err != nil {
				followErrs <- err
			}
		})
	}

	var mu sync.Mutex
	committed := map[int64]bool{}
	write := func(w int, rng *rand.Rand) error {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		pause := func() { time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond) }
		picks := rng.Perm(len(reports))[:1+rng.IntN(3)]
		slices.Sort(picks) // one lock order: no deadlocks
		var ids []int64
		for _, p := range picks {
			// The report's row lock orders the writers of one report.
			if _, err := tx.Exec(ctx, `SELECT 1 FROM reports WHERE id = $1 FOR UPDATE`, reports[p]); err != nil {
				return err
			}
			pause()
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO report_events (report_id, action, to_status, actor, note)
				SELECT id, 'note', status, 'order test', $2 FROM reports WHERE id = $1 RETURNING id`,
				reports[p], fmt.Sprint("writer ", w)).Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			pause()
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify('gridmap_reports', '{"boxes":[]}')`); err != nil {
			return err
		}
		if rng.IntN(6) == 0 {
			return tx.Rollback(ctx) // its events must never reach a client
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			committed[id] = true
		}
		return nil
	}
	var writing sync.WaitGroup
	writeErrs := make(chan error, writers+2)
	for w := range writers {
		writing.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for range transactions {
				if err := write(w, rng); err != nil {
					writeErrs <- err
					return
				}
			}
		})
	}
	for p := range 2 {
		writing.Go(func() {
			for i := range peopleChanges / 2 {
				time.Sleep(time.Duration(10+p*7) * time.Millisecond)
				if err := put(ts.url+"/v1/layers/eo/grids/OA/people", fmt.Sprintf(`{"people":[{"role":"grid_worker","name":"人员 %d-%d"}]}`, p, i)); err != nil {
					writeErrs <- err
					return
				}
			}
		})
	}
	writing.Wait()
	close(writeErrs)
	for err := range writeErrs {
		t.Fatalf("writing: %v", err)
	}

	// The events of this test on a client's stream.
	mine := func(c *feedClient) (reportEvents []int64, people int, all []sseEvent) {
		for _, e := range c.events() {
			if ev, ok := reportEventOf(e); ok && ev.Actor == "order test" {
				reportEvents = append(reportEvents, ev.ID)
				all = append(all, e)
			} else if e.event == "boundary" && strings.Contains(e.data, `"layer":"eo","kind":"people"`) {
				people++
				all = append(all, e)
			}
		}
		return reportEvents, people, all
	}
	deadline := time.After(60 * time.Second)
	for _, c := range followers {
		for {
			ids, people, _ := mine(c)
			if len(ids) >= len(committed) && people >= peopleChanges {
				break
			}
			select {
			case err := <-followErrs:
				t.Fatalf("client: %v", err)
			case <-deadline:
				t.Fatalf("after 60 s a client has %d of %d report events and %d of %d people changes", len(ids), len(committed), people, peopleChanges)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	close(stop)
	following.Wait()

	_, _, first := mine(followers[0])
	for i, c := range followers {
		t.Run(fmt.Sprintf("client %d", i), func(t *testing.T) {
			t.Logf("%d events over %d connections", len(c.events()), c.connects+1)
			last := mustInt(t, start)
			for _, e := range c.events() {
				if n := mustInt(t, e.id); n <= last {
					t.Fatalf("event %d after %d: not once, or not in order", n, last)
				} else {
					last = n
				}
			}
			ids, people, all := mine(c)
			seen := map[int64]bool{}
			for _, id := range ids {
				seen[id] = true
			}
			if len(ids) != len(committed) || len(seen) != len(committed) || people != peopleChanges {
				t.Errorf("%d report events (%d distinct) for %d committed, %d people changes for %d", len(ids), len(seen), len(committed), people, peopleChanges)
			}
			for id := range committed {
				if !seen[id] {
					t.Errorf("committed event %d never arrived", id)
				}
			}
			if !slices.EqualFunc(all, first, func(a, b sseEvent) bool { return a.id == b.id }) {
				t.Errorf("this client's order differs from the first client's")
			}
			// Events of one report, written one after the other under its
			// row lock, arrive in that order.
			byReport := map[int64]int64{}
			for _, e := range all {
				if ev, ok := reportEventOf(e); ok {
					if ev.ID <= byReport[ev.ReportID] {
						t.Errorf("report %d: event %d after %d", ev.ReportID, ev.ID, byReport[ev.ReportID])
					}
					byReport[ev.ReportID] = ev.ID
				}
			}
		})
	}
}

// Shutdown ends the event streams at once instead of waiting for them
// through the whole drain.
func TestShutdownEndsEventStreams(t *testing.T) {
	ts := newTestServer(t, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminTokens.Store(ln.Addr().String(), ts.admin)
	defer adminTokens.Delete(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- ts.Serve(ln) }()
	var streams []<-chan sseEvent
	for range 3 {
		events, stop := openStream(t, "http://"+ln.Addr().String(), "")
		defer stop()
		streams = append(streams, events)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with 3 event streams open: %v", err)
	}
	t.Logf("shutdown took %v", time.Since(began).Round(time.Millisecond))
	for i, events := range streams {
		for range events {
		}
		t.Logf("stream %d ended", i)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}
