package hugepage

import (
	"fmt"
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
	if !allowed() {
		return small, 0
	}
	const thp = "/sys/kernel/mm/transparent_hugepage/"
	b, err := os.ReadFile(thp + "hpage_pmd_size")
	if err != nil {
		return small, 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= uint64(small) || n&(n-1) != 0 {
		return small, 0
	}
	global, err := os.ReadFile(thp + "enabled")
	if err != nil {
		return small, 0
	}
	own, _ := os.ReadFile(fmt.Sprintf(thp+"hugepages-%dkB/enabled", n>>10)) // since Linux 6.8
	if !switchedOn(string(global), string(own)) {
		return small, 0
	}
	// A kernel before 6.1 has no MADV_COLLAPSE. Asked of no memory at
	// all, madvise checks the advice alone.
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, 0, 0, unix.MADV_COLLAPSE); errno != 0 {
		return small, 0
	}
	return small, uintptr(n)
})

// switchedOn reports whether the administrator lets processes have huge
// pages of a size, given the switches' files: the global one
// (transparent_hugepage/enabled) and the size's own ("" where the kernel
// has none, before 6.8). The size's own decides unless it says "inherit".
// (MADV_COLLAPSE itself would ignore them.)
func switchedOn(global, own string) bool {
	for _, on := range []string{"[always]", "[madvise]"} {
		if strings.Contains(own, on) {
			return true
		}
	}
	return !strings.Contains(own, "[never]") && !strings.Contains(global, "[never]") && strings.Contains(global, "[")
}

// allowed is false where transparent huge pages were turned off for this
// process (prctl PR_SET_THP_DISABLE, inherited from its parent) or for Go's
// heap (GODEBUG=disablethp=1, which marks it VM_NOHUGEPAGE). The
// administrator's switches are read with the size (switchedOn), and the
// operator's is Enable.
func allowed() bool {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "THP_enabled:"); ok && strings.TrimSpace(v) == "0" {
				return false
			}
		}
	}
	// The runtime reads GODEBUG's settings in order, the last one kept.
	disabled := false
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "disablethp="); ok {
			disabled = v == "1"
		}
	}
	return !disabled
}

// Size is the size of a huge page, 0 where Collapse moves nothing.
func Size() uintptr {
	if off.Load() {
		return 0
	}
	_, huge := sizes()
	return huge
}

// shortRun is how many pages in a row (of those asked) may find no huge
// page free before Collapse stops asking: each asks the kernel to compact
// memory first.
const shortRun = 8

// Collapse backs the ranges with huge pages, now, when they hold at least
// minBytes in all: MADV_COLLAPSE copies each aligned block of a huge
// page's size that they lie on, its small pages already written, into one
// huge page. A block is moved only when every small page of it is
// resident (mincore): one the ranges only partly cover holds other memory
// too, and memory never written is not made resident. (The kernel may
// still take a page the Go runtime has just released, or one mapped to its
// shared zero page, as resident.) The ranges must not overlap.
//
// Each copy holds the memory map: mmap and munmap anywhere in the process,
// and page faults in the mapping copied (all of Go's heap), wait for it.
func Collapse(ranges []Range, minBytes int) Result {
	small, huge := sizes()
	if huge == 0 || off.Load() {
		return Result{}
	}
	total := 0
	var pages []uintptr
	for _, r := range ranges {
		if r.To <= r.From {
			continue
		}
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
		case syscall.EINVAL:
			// Marked VM_NOHUGEPAGE, or in a state the kernel does not
			// collapse: the next may do.
			res.Refused++
			run = 0
		case syscall.ENOMEM, syscall.EBUSY, syscall.EAGAIN:
			res.Short++
			if run++; run == shortRun {
				return res.count(ranges, moved, huge)
			}
		}
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
		if r.To <= r.From {
			continue
		}
		for p := r.From &^ (huge - 1); p < r.To; p += huge {
			if _, ok := slices.BinarySearch(moved, p); ok {
				res.Bytes += int64(min(r.To, p+huge) - max(r.From, p))
			}
		}
	}
	return res
}
