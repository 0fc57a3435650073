package geo

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/paulmach/orb"
)

// TestIndexInHugePages builds a layer whose points fill a slab of more than
// a huge page: below the size the build moves, it moves nothing; moved on
// request, the kernel shows the slabs' pages as huge, and every lookup
// answers as before.
func TestIndexInHugePages(t *testing.T) {
	in := LayerInput{ID: "circles", Levels: []string{"grid"}, ToleranceM: 10}
	const side, vertices = 32, 500 // 512,000 points: slabs up to 4 MB
	for i := range side * side {
		x, y := float64(i%side)*0.01, float64(i/side)*0.01
		ring := make(orb.Ring, vertices+1)
		for k := range vertices {
			a := 2 * math.Pi * float64(k) / vertices
			ring[k] = orb.Point{x + 0.004*math.Cos(a), y + 0.004*math.Sin(a)}
		}
		ring[vertices] = ring[0]
		in.Grids = append(in.Grids, GridInput{Code: fmt.Sprintf("c%04d", i), Level: "grid", Geometry: orb.MultiPolygon{{ring}}})
	}
	l, err := BuildLayerIndex(in, DefaultMaxPieceVertices, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().HugePageBytes; got != 0 {
		t.Fatalf("an index of %d points is below hugePagesFrom, yet %d bytes of it were moved", l.Stats().Vertices, got)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	pts := make([]orb.Point, 5000)
	before := make([]string, len(pts))
	var h Hit
	for i := range pts {
		pts[i] = orb.Point{-0.005 + rnd.Float64()*0.32, -0.005 + rnd.Float64()*0.32}
		l.Lookup(pts[i][0], pts[i][1], 10, 0, &h)
		before[i] = fmt.Sprint(h.Owner, h.CoOwners, h.Nearest, h.NearestM)
	}
	if !hugePagesAvailable() {
		t.Skip("this kernel (before Linux 6.1) or machine (transparent_hugepage never) gives no huge pages on request")
	}

	// The 2 MB pages that lie wholly within a slab: all written, so all
	// resident, so all to be moved.
	var slabs []span
	var within int64
	for _, s := range l.leaves.st.slabs {
		slabs = spanOf(s, slabs)
		a := slabs[len(slabs)-1]
		if to, from := a.to&^(hugePage-1), (a.from+hugePage-1)&^(hugePage-1); to > from {
			within += int64(to - from)
		}
	}
	if within == 0 {
		t.Fatalf("no slab spans a whole huge page: the test's layer is too small")
	}
	moved := l.intoHugePages(0)
	if moved < within {
		t.Fatalf("moved %d bytes into huge pages, less than the %d of the slabs' own pages", moved, within)
	}
	if huge := anonHugePages(t, slabs); huge < within {
		t.Fatalf("the kernel shows %d bytes of huge pages where the slabs lie, less than their own %d", huge, within)
	}
	for i, p := range pts {
		l.Lookup(p[0], p[1], 10, 0, &h)
		if got := fmt.Sprint(h.Owner, h.CoOwners, h.Nearest, h.NearestM); got != before[i] {
			t.Fatalf("lookup of %v: %s in huge pages, %s before", p, got, before[i])
		}
	}
}

// anonHugePages sums the AnonHugePages of the mappings (/proc/self/smaps)
// that hold any of the spans.
func anonHugePages(t *testing.T, spans []span) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	holds := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if from, to, ok := strings.Cut(strings.Fields(line)[0], "-"); ok && !strings.HasSuffix(line, ":") {
			lo, err1 := strconv.ParseUint(from, 16, 64)
			hi, err2 := strconv.ParseUint(to, 16, 64)
			if err1 == nil && err2 == nil {
				holds = false
				for _, s := range spans {
					holds = holds || (uint64(s.from) < hi && uint64(s.to) > lo)
				}
				continue
			}
		}
		if kb, ok := strings.CutPrefix(line, "AnonHugePages:"); ok && holds {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q: %v", line, err)
			}
			total += n << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestCollapseMovesOnlyResidentPages maps 8 MB, writes one 2 MB page of it
// whole and half of the next: only the whole one is moved, and the half
// never written stays out of memory.
func TestCollapseMovesOnlyResidentPages(t *testing.T) {
	if !hugePagesAvailable() {
		t.Skip("this kernel (before Linux 6.1) or machine (transparent_hugepage never) gives no huge pages on request")
	}
	mem, err := syscall.Mmap(-1, 0, 8<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	start := uintptr(unsafe.Pointer(&mem[0]))
	off := int((start+hugePage-1)&^(hugePage-1) - start)
	whole, half := mem[off:off+hugePage], mem[off+hugePage:off+2*hugePage]
	for i := range whole {
		whole[i] = byte(i)
	}
	for i := range hugePage / 2 {
		half[i] = byte(i)
	}
	base := uintptr(unsafe.Pointer(&whole[0]))
	if got := collapse([]span{{base, base + 2*hugePage}}, 4*hugePage); got != 0 {
		t.Fatalf("moved %d bytes of arrays smaller than asked", got)
	}
	if got := collapse([]span{{base, base + 2*hugePage}}, 0); got != hugePage {
		t.Fatalf("moved %d bytes; want the one page written whole, %d", got, hugePage)
	}
	resident := make([]byte, hugePage/smallPage)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, base+hugePage, hugePage, uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i, r := range resident {
		if in := r&1 != 0; in != (i < len(resident)/2) {
			t.Fatalf("4 KB page %d of the half-written 2 MB page: resident %v", i, in)
		}
	}
	if huge := anonHugePages(t, []span{{base, base + 2*hugePage}}); huge < hugePage {
		t.Fatalf("the kernel shows %d bytes of huge pages in the mapping", huge)
	}
	for i := range whole {
		if whole[i] != byte(i) {
			t.Fatalf("byte %d of the moved page is %d, was written %d", i, whole[i], byte(i))
		}
	}
}

// TestCollapseUnderWriters moves pages that other goroutines write all the
// while, as the pages at an array's ends hold other memory of the Go heap:
// no write is lost.
func TestCollapseUnderWriters(t *testing.T) {
	if !hugePagesAvailable() {
		t.Skip("this kernel (before Linux 6.1) or machine (transparent_hugepage never) gives no huge pages on request")
	}
	const n = 3 << 20 // 24 MB of uint64s
	cells := make([]uint64, n)
	for i := range cells {
		cells[i] = 1
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	const writers = 4
	rounds := make([]uint64, writers) // the last round each wrote whole
	for w := range rounds {
		rounds[w] = 1
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := uint64(2); ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				for i := w; i < n; i += writers * 512 {
					cells[i] = r
				}
				rounds[w] = r
			}
		}()
	}
	moved := collapse(spanOf(cells, nil), 0)
	close(stop)
	wg.Wait()
	if moved == 0 {
		t.Fatalf("moved nothing of a written %d MB array", n*8>>20)
	}
	for i := 0; i < n; i++ {
		want := uint64(1)
		if w := i % (writers * 512); w < writers {
			want = rounds[w]
		}
		if cells[i] != want {
			t.Fatalf("cell %d is %d after the move; its writer last wrote %d", i, cells[i], want)
		}
	}
}
