package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestEditsAndImportsSurviveKill edits grids' people and imports whole
// layers from several clients, and kills the server and PostgreSQL with
// SIGKILL partway: after a restart every acknowledged edit is there (each
// grid holds its last acknowledged edit or a later one), every
// acknowledged import holds all its grids, and an import cut short is
// there whole or not at all.
func TestEditsAndImportsSurviveKill(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir)
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(url, method, path, body string) (int, []byte, error) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b, nil
	}
	square := func(x, y, w float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],[%g,%g]]]}`, x, y, x+w, y, x+w, y+w, x, y+w, x, y)
	}
	// layerBody is a district of 10 x 10 grids at x0.
	const side = 10
	layerBody := func(x0 float64) string {
		parts := []string{fmt.Sprintf(`{"type":"Feature","properties":{"code":"D","name":"district","level":"district"},"geometry":%s}`,
			square(x0, 20, 0.01*side))}
		for i := range side * side {
			parts = append(parts, fmt.Sprintf(`{"type":"Feature","properties":{"code":"G%02d","name":"grid %d","level":"grid","parent":"D"},"geometry":%s}`,
				i, i, square(x0+0.01*float64(i%side), 20+0.01*float64(i/side), 0.01)))
		}
		return `{"type":"FeatureCollection","features":[` + strings.Join(parts, ",") + `]}`
	}
	if status, b, err := send(s.url, "PUT", "/v1/layers/edits", `{"name":"edits","kind":"comprehensive","levels":["district","grid"]}`); err != nil || status/100 != 2 {
		t.Fatalf("layer: %d %s %v", status, b, err)
	}
	if status, b, err := send(s.url, "POST", "/v1/layers/edits/import", layerBody(30)); err != nil || status != 200 {
		t.Fatalf("import: %d %s %v", status, b, err)
	}

	// Four editors each set one grid's worker again and again; four
	// importers load layers of their own one after another.
	var mu sync.Mutex
	lastEdit := map[string]int{} // grid -> last acknowledged edit
	acked := map[string]bool{}   // layers whose import was acknowledged
	tried := map[string]bool{}   // layers whose import was sent
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for e := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			grid := fmt.Sprintf("G%02d", e)
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, _, err := send(s.url, "PUT", "/v1/layers/edits/grids/"+grid+"/people",
					fmt.Sprintf(`{"people":[{"role":"grid_worker","name":"worker %d"}]}`, i))
				if err != nil {
					return // the server is gone
				}
				if status == 200 {
					mu.Lock()
					lastEdit[grid] = i
					mu.Unlock()
				}
			}
		}()
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				layer := fmt.Sprintf("imp-%d-%d", w, i)
				mu.Lock()
				tried[layer] = true
				mu.Unlock()
				status, _, err := send(s.url, "POST", "/v1/layers/"+layer+"/import?levels=district,grid", layerBody(40+float64(w*10+i%10)*0.2))
				if err != nil {
					return
				}
				if status == 200 {
					mu.Lock()
					acked[layer] = true
					mu.Unlock()
				} else {
					t.Errorf("import %s: %d", layer, status)
					return
				}
			}
		}()
	}
	time.Sleep(4 * time.Second)
	s.stop(t, syscall.SIGKILL)
	for _, pid := range postgresOf(dataDir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	close(stop)
	wg.Wait()
	if len(acked) == 0 || len(lastEdit) == 0 {
		t.Fatalf("%d imports and edits of %d grids acknowledged before the kill; the test needs some", len(acked), len(lastEdit))
	}

	s = startServe(t, dataDir)
	defer s.stop(t, syscall.SIGTERM)
	for grid, last := range lastEdit {
		var g struct {
			Properties struct {
				People []struct{ Name string }
			}
		}
		status, b, err := send(s.url, "GET", "/v1/layers/edits/grids/"+grid, "")
		if err != nil || status != 200 || json.Unmarshal(b, &g) != nil || len(g.Properties.People) != 1 {
			t.Fatalf("grid %s after the restart: %d %s %v", grid, status, b, err)
		}
		var n int
		fmt.Sscanf(g.Properties.People[0].Name, "worker %d", &n)
		if n < last {
			t.Errorf("grid %s holds edit %d; edit %d was acknowledged before the kill", grid, n, last)
		}
	}
	for layer := range tried {
		status, b, err := send(s.url, "GET", "/v1/layers/"+layer+"/grids?limit=1000", "")
		if err != nil {
			t.Fatal(err)
		}
		var fc struct{ Features []json.RawMessage }
		_ = json.Unmarshal(b, &fc)
		switch {
		case acked[layer] && (status != 200 || len(fc.Features) != side*side+1):
			t.Errorf("import %s was acknowledged; after the restart it holds %d grids (%d)", layer, len(fc.Features), status)
		case !acked[layer] && status == 200 && len(fc.Features) != 0 && len(fc.Features) != side*side+1:
			t.Errorf("import %s was cut short and holds %d of %d grids: not whole, not nothing", layer, len(fc.Features), side*side+1)
		}
	}
	t.Logf("before SIGKILL: %d imports acknowledged of %d sent, edits acknowledged up to %v", len(acked), len(tried), lastEdit)
}
