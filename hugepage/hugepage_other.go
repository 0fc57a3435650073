//go:build !linux

package hugepage

// Size is 0 outside Linux: Collapse moves nothing.
func Size() uintptr { return 0 }

// Collapse does nothing outside Linux.
func Collapse(ranges []Range, minBytes int) Result { return Result{} }
