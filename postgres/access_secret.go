package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gridmap/gridmap"
	"golang.org/x/crypto/argon2"
)

// Prefixes of the secrets the access store hands out, so that a secret
// pasted in the wrong place (or leaked into a log) is recognised at sight.
const (
	tokenPrefix   = "gmt_"
	sessionPrefix = "gms_"
	linkPrefix    = "gml_"
)

// secretBytes is the randomness of every secret: 256 bits, 43 characters
// of base64url.
const secretBytes = 32

var secretEncoding = base64.RawURLEncoding

// newSecret returns a fresh secret with prefix and the hash it is stored
// under.
func newSecret(prefix string) (string, [sha256.Size]byte) {
	secret := prefix + secretEncoding.EncodeToString(randomBytes(secretBytes))
	return secret, sha256.Sum256([]byte(secret))
}

// secretHash returns the hash a secret with prefix is stored under, and
// false when the secret cannot be one of ours (so no query is spent on it).
func secretHash(prefix, secret string) ([sha256.Size]byte, bool) {
	if len(secret) != len(prefix)+secretEncoding.EncodedLen(secretBytes) || !strings.HasPrefix(secret, prefix) {
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(secret)), true
}

// csrfToken is a session's CSRF token: derived from its secret, so that it
// need not be stored and cannot be turned back into the secret.
func csrfToken(sessionSecret string) string {
	m := hmac.New(sha256.New, []byte(sessionSecret))
	m.Write([]byte("gridmap csrf"))
	return secretEncoding.EncodeToString(m.Sum(nil))
}

// Password rules.
const (
	MinPasswordLength = 10   // characters
	maxPasswordLength = 1024 // bytes; argon2 takes any length, the limit keeps requests small
)

// checkPassword returns EINVALID for a password too short or too long.
func checkPassword(password string) error {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return gridmap.Errorf(gridmap.EINVALID, "a password must have at least %d characters", MinPasswordLength)
	}
	if len(password) > maxPasswordLength {
		return gridmap.Errorf(gridmap.EINVALID, "a password may have at most %d bytes", maxPasswordLength)
	}
	return nil
}

// argon2Params are the cost of a password hash: OWASP's choice for
// argon2id, 19 MiB and two passes on one thread (about 60 ms).
type argon2Params struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

var passwordParams = argon2Params{memory: 19456, time: 2, threads: 1}

const (
	saltBytes = 16
	keyBytes  = 32
)

// hashPassword returns password's argon2id hash in the PHC string format,
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH.
func (s *AccessStore) hashPassword(ctx context.Context, password string) (string, error) {
	salt := randomBytes(saltBytes)
	key, err := s.argon2(ctx, password, salt, passwordParams, keyBytes)
	if err != nil {
		return "", err
	}
	return formatPHC(passwordParams, salt, key), nil
}

func formatPHC(p argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// verifyPassword reports whether password matches a PHC string written by
// hashPassword (with whatever cost it was written with), comparing in
// constant time. A malformed hash matches nothing.
func (s *AccessStore) verifyPassword(ctx context.Context, password, phc string) (bool, error) {
	p, salt, want, ok := parsePHC(phc)
	if !ok {
		return false, nil
	}
	got, err := s.argon2(ctx, password, salt, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHC reads a $argon2id$ PHC string, refusing costs no hash of ours
// would have (so a tampered row cannot make a sign-in allocate gigabytes).
func parsePHC(phc string) (argon2Params, []byte, []byte, bool) {
	var p argon2Params
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 ||
		p.memory < 8*uint32(p.threads) || p.memory > 1<<20 || p.time < 1 || p.time > 16 || p.threads < 1 {
		return p, nil, nil, false
	}
	return p, salt, key, true
}

// argon2 computes a key, waiting for one of a few slots first: each hash
// holds its memory (19 MiB) for its whole run, and a burst of sign-ins must
// not hold that much memory per request at once.
func (s *AccessStore) argon2(ctx context.Context, password string, salt []byte, p argon2Params, n uint32) ([]byte, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, translate(ctx.Err(), "checking a password")
	}
	defer func() { <-s.hashing }()
	return argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, n), nil
}

// dummyPasswordHash is a hash of the current cost that no password
// matches (its key is random, not derived), verified against when a sign-in
// names no account, so that the answer takes as long as for an account with
// a wrong password.
func dummyPasswordHash() string {
	return formatPHC(passwordParams, randomBytes(saltBytes), randomBytes(keyBytes))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return b
}
