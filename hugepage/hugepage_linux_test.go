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

// TestCollapseMovesOnlyResidentPages maps three huge pages' worth between
// two it may not read (so that it joins no other mapping): one marked
// VM_NOHUGEPAGE and written whole, one written whole, and one written
// half. Only the second is moved: the kernel refuses the first, which
// stops nothing; the half never written stays out of memory; and what was
// written reads back.
func TestCollapseMovesOnlyResidentPages(t *testing.T) {
	small, huge := requireHugePages(t)
	mem, err := syscall.Mmap(-1, 0, int(6*huge), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	start := uintptr(unsafe.Pointer(&mem[0]))
	lead := int((start+small+huge-1)&^(huge-1) - start) // at least a page in
	if err := syscall.Mprotect(mem[:lead], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[lead+3*int(huge):], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	region := mem[lead : lead+3*int(huge)]
	refused, whole, half := region[:huge], region[huge:2*huge], region[2*huge:]
	// The half-written page is kept out of huge pages: where the system
	// gives them to all memory, its first write would take a whole one.
	// (Marking the others MADV_HUGEPAGE instead would have khugepaged
	// collapse it, sparse as it is, at any moment.)
	if err := syscall.Madvise(refused, syscall.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Madvise(half, syscall.MADV_NOHUGEPAGE); err != nil {
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(&region[0]))
	before := anonHugePages(t, base, base+3*huge)
	for i := range refused {
		refused[i] = byte(i)
	}
	for i := range whole {
		whole[i] = byte(i)
	}
	for i := range huge / 2 {
		half[i] = byte(i)
	}

	if res := Collapse([]Range{{base, base + 3*huge}}, int(4*huge)); res != (Result{}) {
		t.Fatalf("ranges smaller than asked: %+v", res)
	}
	if res := Collapse([]Range{{base + huge, base + huge}}, 0); res != (Result{}) {
		t.Fatalf("an empty range: %+v", res)
	}
	// The operator's switch moves nothing.
	Enable(false)
	if size, res := Size(), Collapse([]Range{{base + 100, base + 2*huge + 100}}, 0); size != 0 || res != (Result{}) {
		Enable(true)
		t.Fatalf("turned off: size %d, %+v", size, res)
	}
	Enable(true)
	res := Collapse([]Range{{base + 100, base + 2*huge + 100}}, 0)
	if res.Short > 0 {
		t.Skipf("no huge page free: %+v", res)
	}
	if want := (Result{Bytes: int64(huge), Refused: 1}); res != want {
		t.Fatalf("%+v; want %+v: the range's bytes in the page written whole, the page marked VM_NOHUGEPAGE refused", res, want)
	}
	resident := make([]byte, huge/small)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, base+2*huge, huge, uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for i, r := range resident {
		if in := r&1 != 0; in != (i < len(resident)/2) {
			t.Fatalf("small page %d of the half-written huge page: resident %v", i, in)
		}
	}
	if got := anonHugePages(t, base, base+3*huge) - before; got != int64(huge) {
		t.Fatalf("the kernel shows %d more bytes of huge pages in the mapping; want %d", got, huge)
	}
	for _, page := range [][]byte{refused, whole} {
		for i := range page {
			if page[i] != byte(i) {
				t.Fatalf("byte %d of a page written whole is %d, was written %d", i, page[i], byte(i))
			}
		}
	}
}

// TestAllowedReadsGODEBUGsLastWord turns the move off for Go's
// disablethp=1 as the runtime reads it: the last setting kept.
func TestAllowedReadsGODEBUGsLastWord(t *testing.T) {
	requireHugePages(t)
	for godebug, want := range map[string]bool{
		"":                          true,
		"disablethp=1":              false,
		"gctrace=0, disablethp=1":   false,
		"disablethp=1,disablethp=0": true,
		"disablethp=0,disablethp=1": false,
		"madvdontneed=1":            true,
	} {
		t.Setenv("GODEBUG", godebug)
		if got := allowed(); got != want {
			t.Errorf("GODEBUG=%q: allowed %v, want %v", godebug, got, want)
		}
	}
}

// TestSwitchedOn reads the administrator's switches as the kernel does:
// a size's own decides unless it inherits the global one.
func TestSwitchedOn(t *testing.T) {
	const (
		always  = "[always] madvise never\n"
		madvise = "always [madvise] never\n"
		never   = "always madvise [never]\n"
		// A size's own switch.
		ownAlways  = "[always] inherit madvise never\n"
		ownInherit = "always [inherit] madvise never\n"
		ownMadvise = "always inherit [madvise] never\n"
		ownNever   = "always inherit madvise [never]\n"
	)
	for _, tc := range []struct {
		global, own string
		want        bool
	}{
		{always, "", true},
		{madvise, "", true},
		{never, "", false},
		{"", "", false}, // no global switch: no transparent huge pages
		{madvise, ownInherit, true},
		{never, ownInherit, false},
		{always, ownNever, false},
		{never, ownMadvise, true},
		{never, ownAlways, true},
	} {
		if got := switchedOn(tc.global, tc.own); got != tc.want {
			t.Errorf("global %q, the size's own %q: %v, want %v", tc.global, tc.own, got, tc.want)
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
