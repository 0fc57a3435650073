// Package hugepage moves memory a process reads at random into the
// kernel's transparent huge pages (2 MB on x86-64), so that reading it
// misses the CPU's page table cache (TLB) far less often.
package hugepage

import (
	"sync/atomic"
	"unsafe"
)

// off is the operator's switch (Enable).
var off atomic.Bool

// Enable(false) makes Collapse move nothing from now on, in this process,
// and Enable(true) lets it move again, as it does by default: `gridmap
// serve --huge-pages=false`, for an operator who wants small pages for
// gridmap alone where the administrator's switches are the machine's.
func Enable(on bool) { off.Store(!on) }

// Range is the address range of an array's elements. The array is on the
// heap (a stack may move) and kept reachable by its owner while a Range of
// it is in use: a Range does not keep it.
type Range struct{ From, To uintptr }

// Of is the range of s's elements (its length, not its capacity).
func Of[T any](s []T) Range {
	if len(s) == 0 {
		return Range{}
	}
	from := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return Range{from, from + uintptr(len(s))*unsafe.Sizeof(s[0])}
}

// Result is what Collapse did.
type Result struct {
	// Bytes is how much of the ranges lies in huge pages now.
	Bytes int64
	// Short counts the pages left as they were for want of a free huge
	// page (ENOMEM, or EBUSY within a cgroup's limit) or because their
	// small pages stayed busy (EAGAIN, twice).
	Short int
	// Refused counts the pages the kernel would not move (EINVAL: marked
	// VM_NOHUGEPAGE, or in a state it does not collapse).
	Refused int
}
