package server

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

// requestIDs hands out the ids of requests that arrive without one: a
// random prefix drawn once per process and a counter, 32 hex digits as long
// as echo's random ids. An id names a request in logs and error answers;
// it must be unique, not secret, so it is not drawn from crypto/rand per
// request.
type requestIDs struct {
	prefix [16]byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var r [8]byte
	_, _ = rand.Read(r[:]) // never fails on Linux (Go 1.24+ crashes instead)
	g := &requestIDs{}
	hex.Encode(g.prefix[:], r[:])
	return g
}

func (g *requestIDs) next() string {
	const digits = "0123456789abcdef"
	var b [32]byte
	copy(b[:16], g.prefix[:])
	n := g.n.Add(1)
	for i := len(b) - 1; i >= 16; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}
