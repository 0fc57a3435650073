package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	id, event, data string
}

// openStream connects to /v1/events and delivers its events on a channel.
func openStream(t *testing.T, url, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.data != "" {
					out <- e
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
		close(out)
	}()
	return out, cancel
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
