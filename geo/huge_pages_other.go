//go:build !linux

package geo

// intoHugePages does nothing outside Linux.
func (l *LayerIndex) intoHugePages(minBytes int) int64 { return 0 }
