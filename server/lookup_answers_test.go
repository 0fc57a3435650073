package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
)

// TestLookupAnswersGetAndPost holds GET and POST /v1/lookup to the answer
// the lookup path wrote before it was made lean: the index's answer
// encoded by AppendLookupJSON, byte for byte, for 22,500 points inside,
// on the edges of and outside a layer's grids, in no order (a batch large
// enough to be read in pieces and answered in space order), signed in and
// anonymous, in WGS84 and GCJ-02, with and without tolerance and accuracy.
func TestLookupAnswersGetAndPost(t *testing.T) {
	ts := newTestServer(t, Config{PublicRead: true})
	lookupLayer(t, ts, "lkeq", 0.01)
	if r := do(t, "PUT", ts.url+"/v1/layers/lkeq/grids/A/people", `{"people":[{"role":"grid_worker","name":"王 \"芳\"","phone":"13900000001"}]}`); r.status != 200 {
		t.Fatalf("people: %d %s", r.status, r.body)
	}
	eventually(t, "people appear in the answer", func() bool {
		r := do(t, "GET", ts.url+"/v1/lookup?layer=lkeq&lon=120.005&lat=30.005", "")
		return strings.Contains(string(r.body), "13900000001")
	})
	var lons, lats []string
	for i := range 150 {
		for j := range 150 {
			// Steps of 0.0002 and 0.0001 degrees from the layer's south-west
			// outside: every grid, its edges exactly (120.01, 30), and around.
			lons = append(lons, strconv.FormatFloat(119.995+float64(i)*0.0002, 'f', 4, 64))
			lats = append(lats, strconv.FormatFloat(29.998+float64(j)*0.0001, 'f', 4, 64))
		}
	}
	// In no order: a batch this large is answered in space order and
	// written in the order it came in.
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(lons), func(i, j int) {
		lons[i], lons[j] = lons[j], lons[i]
		lats[i], lats[j] = lats[j], lats[i]
	})
	variants := []struct {
		name, crs, tolerance, accuracy string
		anonymous                      bool
	}{
		{"signed in, WGS84", "", "", "", false},
		{"anonymous: no people", "", "", "", true},
		{"GCJ-02 with tolerance and accuracy", "gcj02", "5", "20", false},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var header []string
			if v.anonymous {
				header = noAuth
			}
			// The answers as the lookup path wrote them before.
			want := make([]string, len(lons))
			var ans gridmap.LookupAnswer
			for i := range lons {
				lon, _ := strconv.ParseFloat(lons[i], 64)
				lat, _ := strconv.ParseFloat(lats[i], 64)
				q := gridmap.LookupQuery{Layer: "lkeq"}
				if v.tolerance != "" {
					tol, _ := strconv.ParseFloat(v.tolerance, 64)
					q.ToleranceM = &tol
				}
				q.AccuracyM, _ = strconv.ParseFloat(v.accuracy, 64) // "": 0
				q.Lon, q.Lat, _ = geo.ToWGS84(v.crs, lon, lat)
				if err := ts.locator.Lookup(context.Background(), q, &ans); err != nil {
					t.Fatal(err)
				}
				if v.anonymous {
					ans.ForgetPeople()
				}
				want[i] = string(AppendLookupJSON(nil, &ans, lon, lat, v.crs))
			}

			var body strings.Builder
			body.WriteString(`{"layer":"lkeq"`)
			for _, f := range [][2]string{{"crs", strconv.Quote(v.crs)}, {"tolerance_m", v.tolerance}, {"accuracy_m", v.accuracy}} {
				if f[1] != "" && f[1] != `""` {
					fmt.Fprintf(&body, `,%q:%s`, f[0], f[1])
				}
			}
			body.WriteString(`,"points":[`)
			for i := range lons {
				if i > 0 {
					body.WriteString(",")
				}
				fmt.Fprintf(&body, "[%s,%s]", lons[i], lats[i])
			}
			body.WriteString("]}")
			r := do(t, "POST", ts.url+"/v1/lookup", body.String(), header...)
			if r.status != 200 {
				t.Fatalf("POST: %d %s", r.status, r.body)
			}
			if whole := `{"results":[` + strings.Join(want, ",") + `]}`; string(r.body) != whole {
				var got struct{ Results []json.RawMessage }
				r.json(t, &got)
				for i := range want {
					if i >= len(got.Results) || string(got.Results[i]) != want[i] {
						t.Fatalf("POST, point %d (%s, %s) of %d answers:\n%s\nwant\n%s", i, lons[i], lats[i], len(got.Results), got.Results[min(i, len(got.Results)-1)], want[i])
					}
				}
				t.Fatalf("POST answers each point as before, but the whole differs:\n%.300s", r.body)
			}

			query := "layer=lkeq"
			for _, f := range [][2]string{{"crs", v.crs}, {"tolerance_m", v.tolerance}, {"accuracy_m", v.accuracy}} {
				if f[1] != "" {
					query += "&" + f[0] + "=" + f[1]
				}
			}
			for i := 0; i < len(lons); i += 23 {
				r := do(t, "GET", ts.url+"/v1/lookup?"+query+"&lon="+lons[i]+"&lat="+lats[i], "", header...)
				if r.status != 200 || string(r.body) != want[i] {
					t.Fatalf("GET, point %d (%s, %s): %d\n%s\nwant\n%s", i, lons[i], lats[i], r.status, r.body, want[i])
				}
			}
		})
	}
}
