//go:build !linux

package geo

// TrimCHeap does nothing outside Linux.
func TrimCHeap() {}
