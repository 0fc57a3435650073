package hugepage

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

func requireHugePages(t *testing.T) (small, huge uintptr) {
	t.Helper()
	if Size() == 0 {
		t.Skip("no huge pages on request here: a kernel before Linux 6.1, transparent_hugepage set to never, or GODEBUG=disablethp=1")
	}
	return sizes()
}

// TestOf measures a slice's elements, not its capacity.
func TestOf(t *testing.T) {
	if r := Of([]uint64(nil)); r != (Range{}) {
		t.Fatalf("an empty slice lies at %v", r)
	}
	s := make([]uint64, 10, 100)
	if r := Of(s); r.From != uintptr(unsafe.Pointer(&s[0])) || r.To-r.From != 80 {
		t.Fatalf("ten uint64s lie at %#x to %#x", r.From, r.To)
	}
}

// TestCollapseMovesOnlyResidentPages maps four huge pages' worth, writes
// one huge page of it whole and half of the next: only the whole one is
// moved, the half never written stays out of memory, and what was written
// reads back.
func TestCollapseMovesOnlyResidentPages(t *testing.T) {
	small, huge := requireHugePages(t)
	mem, err := syscall.Mmap(-1, 0, int(4*huge), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	start := uintptr(unsafe.Pointer(&mem[0]))
	off := int((start+huge-1)&^(huge-1) - start)
	region := mem[off : off+2*int(huge)]
	whole, half := region[:huge], region[huge:]
	base := uintptr(unsafe.Pointer(&region[0]))
	// Where the system gives huge pages to all memory, the first write
	// into the half-written page would take a whole one. (Marking it
	// MADV_HUGEPAGE instead would have khugepaged collapse it, sparse as
	// it is, at any moment.)
	if err := syscall.Madvise(half, syscall.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	before := anonHugePages(t, base, base+2*huge)
	for i := range whole {
		whole[i] = byte(i)
	}
	for i := range huge / 2 {
		half[i] = byte(i)
	}

	if res := Collapse([]Range{{base, base + 2*huge}}, int(4*huge)); res != (Result{}) {
		t.Fatalf("ranges smaller than asked: %+v", res)
	}
	res := Collapse([]Range{{base + 100, base + huge + 100}}, 0)
	if res.Short > 0 {
		t.Skipf("no huge page free: %+v", res)
	}
	if res.Bytes != int64(huge-100) {
		t.Fatalf("%+v; want the range's %d bytes in the page written whole", res, huge-100)
	}
	resident := make([]byte, huge/small)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, base+huge, huge, uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i, r := range resident {
		if in := r&1 != 0; in != (i < len(resident)/2) {
			t.Fatalf("small page %d of the half-written huge page: resident %v", i, in)
		}
	}
	if got := anonHugePages(t, base, base+2*huge) - before; got != int64(huge) {
		t.Fatalf("the kernel shows %d more bytes of huge pages in the mapping; want %d", got, huge)
	}
	for i := range whole {
		if whole[i] != byte(i) {
			t.Fatalf("byte %d of the moved page is %d, was written %d", i, whole[i], byte(i))
		}
	}
}

// anonHugePages sums the AnonHugePages of the mappings (/proc/self/smaps)
// that meet [from, to).
func anonHugePages(t *testing.T, from, to uintptr) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	meets := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := mapping(line); ok {
			meets = uint64(from) < hi && uint64(to) > lo
			continue
		}
		if kb, ok := strings.CutPrefix(line, "AnonHugePages:"); ok && meets {
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

// mapping reads the address range that begins a mapping's lines in smaps.
func mapping(line string) (lo, hi uint64, ok bool) {
	first, _, _ := strings.Cut(line, " ")
	a, b, ok := strings.Cut(first, "-")
	if !ok {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	return lo, hi, err1 == nil && err2 == nil
}

// TestCollapseUnderWriters moves pages that other goroutines write all the
// while, as a huge page at an array's end holds other memory of the Go
// heap: no write is lost.
func TestCollapseUnderWriters(t *testing.T) {
	requireHugePages(t)
	const n = 3 << 20 // 24 MB of uint64s
	cells := make([]uint64, n)
	for i := range cells {
		cells[i] = 1
	}
	const writers, stride = 4, 4 * 512
	rounds := make([]uint64, writers) // the last round each wrote whole
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		rounds[w] = 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := uint64(2); ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				for i := w; i < n; i += stride {
					cells[i] = r
				}
				rounds[w] = r
			}
		}()
	}
	res := Collapse([]Range{Of(cells)}, 0)
	close(stop)
	wg.Wait()
	if res.Bytes == 0 && res.Short == 0 {
		t.Fatalf("moved nothing of a written %d MB array: %+v", n*8>>20, res)
	}
	for i := range n {
		want := uint64(1)
		if w := i % stride; w < writers {
			want = rounds[w]
		}
		if cells[i] != want {
			t.Fatalf("cell %d is %d after the move; its writer last wrote %d", i, cells[i], want)
		}
	}
}
