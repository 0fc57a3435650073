package hugepage

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sizes are the system's page and huge page sizes; huge is 0 where the
// process may not ask for huge pages.
var sizes = sync.OnceValues(func() (small, huge uintptr) {
	small = uintptr(os.Getpagesize())
	// The administrator turned transparent huge pages off (MADV_COLLAPSE
	// would otherwise ignore it), or Go was told to keep its heap out of
	// them (GODEBUG=disablethp=1, which marks the heap VM_NOHUGEPAGE).
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || strings.Contains(string(b), "[never]") {
		return small, 0
	}
	if strings.Contains(os.Getenv("GODEBUG"), "disablethp=1") {
		return small, 0
	}
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
	if err != nil {
		return small, 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= uint64(small) || n&(n-1) != 0 {
		return small, 0
	}
	// A kernel before 6.1 has no MADV_COLLAPSE. Asked of no memory at
	// all, madvise checks the advice alone.
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, 0, 0, unix.MADV_COLLAPSE); errno != 0 {
		return small, 0
	}
	return small, uintptr(n)
})

// Size is the size of a huge page, 0 where Collapse moves nothing.
func Size() uintptr {
	_, huge := sizes()
	return huge
}

// shortRun is how many pages in a row may find no huge page free before
// Collapse stops asking: each asks the kernel to compact memory first.
const shortRun = 8

// Collapse backs the ranges with huge pages, now, when they hold at least
// minBytes in all: MADV_COLLAPSE copies each aligned block of a huge
// page's size that they lie on, its small pages already written, into one
// huge page. A block the ranges
// only partly cover holds other memory too: it is moved only when every
// small page of it is resident (mincore), so that memory never written is
// not made resident. (The kernel may still take a page the Go runtime has
// just released, or one mapped to its shared zero page, as resident.)
//
// Moving a page takes the process's memory map lock for the copy: a page
// fault anywhere in the process waits meanwhile.
func Collapse(ranges []Range, minBytes int) Result {
	small, huge := sizes()
	if huge == 0 {
		return Result{}
	}
	total := 0
	var pages []uintptr
	for _, r := range ranges {
		total += int(r.To - r.From)
		for p := r.From &^ (huge - 1); p < r.To; p += huge {
			pages = append(pages, p)
		}
	}
	if total < minBytes || len(pages) == 0 {
		return Result{}
	}
	slices.Sort(pages)
	pages = slices.Compact(pages)
	var res Result
	var moved []uintptr // the pages now huge, in order
	resident := make([]byte, huge/small)
	run := 0
	for _, p := range pages {
		if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, p, huge, uintptr(unsafe.Pointer(&resident[0]))); errno != 0 {
			continue // not all of it is mapped
		}
		if slices.ContainsFunc(resident, func(r byte) bool { return r&1 == 0 }) {
			continue
		}
		errno := collapse(p, huge)
		if errno == syscall.EAGAIN { // a page was busy for a moment
			errno = collapse(p, huge)
		}
		switch errno {
		case 0:
			moved = append(moved, p)
			run = 0
		case syscall.ENOMEM, syscall.EBUSY, syscall.EAGAIN:
			res.Short++
			if run++; run == shortRun {
				return res.count(ranges, moved, huge)
			}
		}
		// EINVAL: a page the kernel will not move (marked VM_NOHUGEPAGE,
		// or in a state it does not collapse): the next may do.
	}
	return res.count(ranges, moved, huge)
}

func collapse(p, size uintptr) syscall.Errno {
	_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, p, size, unix.MADV_COLLAPSE)
	return errno
}

// count sets res.Bytes to the bytes of the ranges within the moved pages
// (sorted).
func (res Result) count(ranges []Range, moved []uintptr, huge uintptr) Result {
	for _, r := range ranges {
		for p := r.From &^ (huge - 1); p < r.To; p += huge {
			if _, ok := slices.BinarySearch(moved, p); ok {
				res.Bytes += int64(min(r.To, p+huge) - max(r.From, p))
			}
		}
	}
	return res
}
