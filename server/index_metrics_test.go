package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

type fixedIndexStats []gridmap.IndexStats

func (f fixedIndexStats) IndexStats() []gridmap.IndexStats { return f }

// TestIndexMetricsShowEachField has the index collector report a layer
// whose every figure differs, and finds each under its own name.
func TestIndexMetricsShowEachField(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&indexCollector{fixedIndexStats{{Layer: "p", DataVersion: 7, Grids: 11, Pieces: 13, Vertices: 17,
		NearBytes: 19, HugePageBytes: 23 << 20, HugePagesShort: 37, HugePagesRefused: 41, Rebuilds: 29, LastRebuild: 31 * time.Second, FromReplica: true}}})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&out, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		`gridmap_lookup_index_grids{layer="p"} 11`,
		`gridmap_lookup_index_vertices{layer="p"} 17`,
		`gridmap_lookup_index_near_bytes{layer="p"} 19`,
		`gridmap_lookup_index_huge_page_bytes{layer="p"} 2.4117248e+07`,
		`gridmap_lookup_index_huge_pages_unmoved{layer="p",reason="short"} 37`,
		`gridmap_lookup_index_huge_pages_unmoved{layer="p",reason="refused"} 41`,
		`gridmap_lookup_index_data_version{layer="p"} 7`,
		`gridmap_lookup_index_rebuilds_total{layer="p"} 29`,
		`gridmap_lookup_index_last_rebuild_seconds{layer="p"} 31`,
		`gridmap_lookup_index_from_replica{layer="p"} 1`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, out.String())
		}
	}
}
