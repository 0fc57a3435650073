//go:build linux

package geo

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/gridmap/gridmap/hugepage"
	"github.com/paulmach/orb"
)

// circles is a layer of side*side grids, each a circle of the given
// vertices, 0.01 degrees apart.
func circles(side, vertices int) LayerInput {
	in := LayerInput{ID: "circles", Levels: []string{"grid"}, ToleranceM: 10}
	for i := range side * side {
		x, y := float64(i%side)*0.01, float64(i/side)*0.01
		ring := make(orb.Ring, vertices+1)
		for k := range vertices {
			a := 2 * math.Pi * float64(k) / float64(vertices)
			ring[k] = orb.Point{x + 0.004*math.Cos(a), y + 0.004*math.Sin(a)}
		}
		ring[vertices] = ring[0]
		in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("c%05d", i), Level: "grid", Geometry: orb.MultiPolygon{{ring}}})
	}
	return in
}

// TestIndexInHugePages builds a layer below the size from which a build
// moves its lookup memory into huge pages, which keeps its pages, and one
// above it: that build moves every kind of array a lookup reads, at least
// the pages lying wholly within them (all written, so all resident), the
// kernel shows them, and lookups answer from them.
func TestIndexInHugePages(t *testing.T) {
	small, err := BuildLayerIndex(circles(8, 500), DefaultMaxPieceVertices, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := small.Stats().HugePageBytes; got != 0 {
		t.Fatalf("an index of %d points is below hugePagesFrom, yet %d bytes of it were moved", small.Stats().Vertices, got)
	}
	huge := hugepage.Size()
	if huge == 0 {
		t.Skip("no huge pages on request here: a kernel before Linux 6.1, transparent_hugepage set to never, or GODEBUG=disablethp=1")
	}
	in := circles(64, 600) // 2.5 million points
	// Huge pages an earlier index left in the heap, free, would be
	// counted before and reused by this one.
	debug.FreeOSMemory()
	before := smapsHugePages(t)
	l, err := BuildLayerIndex(in, DefaultMaxPieceVertices, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := smapsHugePages(t)
	if st := l.Stats(); st.HugePagesShort > 0 {
		t.Skipf("the kernel had too few huge pages free: %+v", st)
	}
	mem := l.lookupMemory()
	total, within := 0, int64(0)
	for _, r := range mem {
		total += int(r.To - r.From)
		if to, from := r.To&^(huge-1), (r.From+huge-1)&^(huge-1); to > from {
			within += int64(to - from)
		}
	}
	if total < hugePagesFrom {
		t.Fatalf("the test's layer reads %d bytes in lookups, below hugePagesFrom", total)
	}
	got := l.Stats().HugePageBytes
	if got < within || got > int64(total) {
		t.Fatalf("%d bytes moved into huge pages; want the %d within the arrays' own pages at least, %d at most", got, within, total)
	}
	if after-before < within {
		t.Fatalf("the kernel shows %d more bytes of huge pages, fewer than the %d within the arrays' own pages", after-before, within)
	}
	// Every kind of array a lookup reads is among those moved.
	kinds := map[string][]hugepage.Range{
		"grids": {hugepage.Of(l.Grids)}, "ancestors": {hugepage.Of(l.up), hugepage.Of(l.ups)},
		"pieces": {hugepage.Of(l.leaves.pieces)}, "tree": {hugepage.Of(l.leaves.tree.boxes)},
		"lattice": {hugepage.Of(l.leaves.cells.start), hugepage.Of(l.leaves.cells.items)},
		"edges":   {hugepage.Of(l.edges.chunks), hugepage.Of(l.edges.tree.boxes)},
		"points":  {hugepage.Of(l.leaves.st.slabs[len(l.leaves.st.slabs)-1])},
		"chains":  {hugepage.Of(l.leaves.st.chains[len(l.leaves.st.chains)-1])},
	}
	for kind, arrays := range kinds {
		for _, r := range arrays {
			if r == (hugepage.Range{}) {
				t.Fatalf("the test's layer has no %s", kind)
			}
			found := false
			for _, m := range mem {
				found = found || m == r
			}
			if !found {
				t.Errorf("the %s at %#x are not in the layer's lookup memory", kind, r.From)
			}
		}
	}

	rnd := rand.New(rand.NewPCG(1, 2))
	var h Hit
	for range 5000 {
		i := rnd.IntN(64 * 64)
		x, y := float64(i%64)*0.01+0.003*(rnd.Float64()-0.5), float64(i/64)*0.01+0.003*(rnd.Float64()-0.5)
		l.Lookup(x, y, 10, 0, &h)
		if want := fmt.Sprintf("c%05d", i); h.Owner < 0 || l.Grids[h.Owner].Code != want || len(h.CoOwners) != 0 {
			t.Fatalf("lookup of (%v, %v), well inside %s: owner %d, co-owners %v", x, y, want, h.Owner, h.CoOwners)
		}
	}
}

// smapsHugePages is the process's AnonHugePages (/proc/self/smaps_rollup).
func smapsHugePages(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "AnonHugePages:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatal("smaps_rollup has no AnonHugePages")
	return 0
}
