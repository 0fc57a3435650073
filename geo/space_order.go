package geo

import "math"

// SpaceOrder returns the positions of points in space order, along a
// Z-order curve over their box, 65,536 steps a side, and the points in that
// order. Looked up in that order, each point reads the cells, pieces and
// chains the one before it read, still in the processor's caches; in
// theirs, points scattered over a layer each read memory no cache holds.
// Points are expected to be numbers: a NaN coordinate leaves the box, and
// so the order, undefined along its axis.
func SpaceOrder[P ~[2]float64](points []P) (order []int32, sorted []P) {
	if len(points) == 0 {
		return nil, nil
	}
	lo, hi := [2]float64(points[0]), [2]float64(points[0])
	for _, p := range points[1:] {
		lo = [2]float64{min(lo[0], p[0]), min(lo[1], p[1])}
		hi = [2]float64{max(hi[0], p[0]), max(hi[1], p[1])}
	}
	const side = 1 << 16
	var scale [2]float64
	for a := range scale {
		if inv := side / (hi[a] - lo[a]); hi[a] > lo[a] && !math.IsInf(inv, 0) {
			scale[a] = inv
		}
	}
	keys := make([]uint64, len(points))
	for i, p := range points {
		x, y := cellOf(p[0], lo[0], scale[0], side), cellOf(p[1], lo[1], scale[1], side)
		keys[i] = zOrder(uint16(x), uint16(y))<<32 | uint64(i)
	}
	// Least significant digit first, 16 bits of the key a pass: stable,
	// so the second pass keeps the order of the first.
	tmp := make([]uint64, len(keys))
	count := make([]int, 1<<16+1)
	for shift := 32; shift < 64; shift += 16 {
		clear(count)
		for _, k := range keys {
			count[(k>>shift)&0xffff+1]++
		}
		for d := 1; d < len(count); d++ {
			count[d] += count[d-1]
		}
		for _, k := range keys {
			d := (k >> shift) & 0xffff
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	order = make([]int32, len(keys))
	sorted = make([]P, len(keys))
	for j, k := range keys {
		order[j] = int32(uint32(k))
		sorted[j] = points[order[j]]
	}
	return order, sorted
}
