package server

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
)

// requestIDs hands out the ids of requests that arrive without one: a
// random prefix drawn once per process and 64 random bits from a fast
// source, 32 hex digits as long as echo's random ids. An id names a
// request in logs and error answers; it must be unique, not secret, so it
// is not drawn from crypto/rand per request; and not counted, so that it
// tells no caller how many requests came before.
type requestIDs struct {
	prefix [16]byte
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
	n := mrand.Uint64()
	for i := len(b) - 1; i >= 16; i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}
