package geo

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBucketByTopBits orders keys into buckets by their top bits, in place:
// random keys, keys all in the last bucket, keys differing only in the top
// bit, none, for one to nine workers. Each bucket must hold exactly the keys of its top bits, and no
// key may be lost or doubled.
func TestBucketByTopBits(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	sets := map[string]func() []edgeKey{
		"random": func() []edgeKey {
			keys := make([]edgeKey, 1000)
			for i := range keys {
				keys[i] = edgeKey{key: rnd.Uint64(), i: int32(i)}
			}
			return keys
		},
		"all in the last bucket": func() []edgeKey {
			keys := make([]edgeKey, 300)
			for i := range keys {
				keys[i] = edgeKey{key: ^uint64(0) - uint64(i), i: int32(i)}
			}
			return keys
		},
		"the top bit set or not": func() []edgeKey {
			keys := make([]edgeKey, 301)
			for i := range keys {
				keys[i] = edgeKey{key: uint64(i%2) << 63, i: int32(i)}
			}
			return keys
		},
		"none": func() []edgeKey { return nil },
	}
	for name, make := range sets {
		for workers := 1; workers <= 9; workers++ {
			keys := make()
			want := slices.Clone(keys)
			buckets := bucketByTopBits(keys, workers)
			if len(buckets) < workers {
				t.Fatalf("%s, %d workers: %d buckets", name, workers, len(buckets))
			}
			shift := bits.Len(uint(len(buckets) - 1))
			var got []edgeKey
			for b, part := range buckets {
				for _, k := range part {
					if shift > 0 && int(k.key>>(64-shift)) != b {
						t.Fatalf("%s, %d workers: key %x in bucket %d", name, workers, k.key, b)
					}
				}
				got = append(got, part...)
			}
			byIndex := func(x, y edgeKey) int { return int(x.i - y.i) }
			slices.SortFunc(got, byIndex)
			slices.SortFunc(want, byIndex)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, %d workers: the buckets hold other keys than given", name, workers)
			}
		}
	}
}

// TestSplitRange covers [0, n) with contiguous ranges, none empty.
func TestSplitRange(t *testing.T) {
	for n := 0; n < 20; n++ {
		for parts := 1; parts < 6; parts++ {
			next := 0
			for _, r := range splitRange(n, parts) {
				if r[0] != next || (n > 0 && r[1] <= r[0]) {
					t.Fatalf("n %d, %d parts: range %v after %d", n, parts, r, next)
				}
				next = r[1]
			}
			if next != n {
				t.Fatalf("n %d, %d parts: ranges end at %d", n, parts, next)
			}
		}
	}
}
