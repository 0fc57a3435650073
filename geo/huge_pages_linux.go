package geo

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

const (
	hugePage     = 2 << 20
	smallPage    = 4 << 10
	madvCollapse = 25 // MADV_COLLAPSE, Linux 6.1
)

// hugePagesRefused is set once the kernel has no MADV_COLLAPSE (before
// Linux 6.1): no later index asks again.
var hugePagesRefused atomic.Bool

// hugePagesAllowed is false where the machine's administrator turned
// transparent huge pages off (MADV_COLLAPSE would otherwise ignore it).
var hugePagesAllowed = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !strings.Contains(string(b), "[never]")
})

// hugePagesAvailable tells whether this kernel collapses pages on request
// and the machine allows it.
func hugePagesAvailable() bool { return !hugePagesRefused.Load() && hugePagesAllowed() }

// intoHugePages moves the arrays a lookup reads (the layer's grids and
// their ancestors, its pieces, trees, lattices, edges, and the store's
// points and chains) into 2 MB pages, when they hold at least minBytes,
// and returns the bytes of them now in huge pages.
//
// A province's index is a gigabyte that lookups read at random, and in
// 4 KB pages most of a lookup's cache misses were TLB misses too. Go asks
// for no huge pages, and where the system gives them only to memory that
// asks (transparent_hugepage "madvise", Debian's default) it has none.
// MADV_COLLAPSE copies pages already written into huge pages, now; a 2 MB
// page at an array's end that holds other memory too is collapsed only
// when every 4 KB page of it is already resident (mincore), so this moves
// memory but never adds to it.
func (l *LayerIndex) intoHugePages(minBytes int) int64 {
	if !hugePagesAvailable() {
		return 0
	}
	var arrays []span
	arrays = spanOf(l.Grids, arrays)
	arrays = spanOf(l.up, arrays)
	arrays = spanOf(l.ups, arrays)
	for _, s := range []*pieceSet{&l.leaves, &l.inner} {
		arrays = spanOf(s.pieces, arrays)
		if s.tree != nil {
			arrays = spanOf(s.tree.boxes, arrays)
		}
		if s.cells != nil {
			arrays = spanOf(s.cells.start, arrays)
			arrays = spanOf(s.cells.items, arrays)
		}
	}
	arrays = spanOf(l.edges.chunks, arrays)
	if l.edges.tree != nil {
		arrays = spanOf(l.edges.tree.boxes, arrays)
	}
	if st := l.leaves.st; st != nil {
		for _, s := range st.slabs {
			arrays = spanOf(s, arrays)
		}
		for _, c := range st.chains {
			arrays = spanOf(c, arrays)
		}
	}
	moved := collapse(arrays, minBytes)
	runtime.KeepAlive(l)
	return moved
}

// collapse moves the 2 MB pages the arrays lie on into huge pages when
// they hold minBytes or more, each page only when every 4 KB of it is
// resident, and returns the bytes moved.
func collapse(arrays []span, minBytes int) int64 {
	total := 0
	var pages []uintptr
	for _, a := range arrays {
		total += int(a.to - a.from)
		for p := a.from &^ (hugePage - 1); p < a.to; p += hugePage {
			pages = append(pages, p)
		}
	}
	if total < minBytes {
		return 0
	}
	slices.Sort(pages)
	pages = slices.Compact(pages)
	resident := make([]byte, hugePage/smallPage)
	var moved int64
	for _, p := range pages {
		if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, p, hugePage, uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
			continue // not all of it is mapped
		}
		if slices.ContainsFunc(resident, func(r byte) bool { return r&1 == 0 }) {
			continue
		}
		switch _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, p, hugePage, madvCollapse); errno {
		case 0:
			moved += hugePage
		case syscall.EINVAL:
			// A kernel before 6.1, with no MADV_COLLAPSE.
			hugePagesRefused.Store(true)
			return moved
		}
		// Otherwise no huge page was free to take (EAGAIN, ENOMEM): the
		// next may find one.
	}
	return moved
}

// span is the address range of an array's elements.
type span struct{ from, to uintptr }

func spanOf[T any](s []T, out []span) []span {
	if len(s) == 0 {
		return out
	}
	from := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return append(out, span{from, from + uintptr(len(s))*unsafe.Sizeof(s[0])})
}
