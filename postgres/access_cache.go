package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
)

// AccessChannel is the notification channel of every change that can take
// access away (a revoked token, a disabled account, a changed role, scope
// or password, a signed-out session). Its payload says what changed:
// followers drop the one session a sign-out names (sessionNotice and the
// hash in hex), and everything they cached on any other notice.
const AccessChannel = "gridmap_access"

// sessionNotice starts the notice of one ended session.
const sessionNotice = "session "

// accessCacheTTL is the longest a cached caller is trusted without asking
// the database again, even while following.
const accessCacheTTL = 30 * time.Second

// accessOutageGrace is how long a caller cached while following is still
// trusted when the database cannot be reached to ask again: no access can
// be taken away while the database is down (that is a write), so lookups
// and tiles keep serving the callers seen before the outage.
const accessOutageGrace = 10 * time.Minute

// Follow listens for access changes and drops the cached callers on each,
// until ctx ends. Session and token lookups are cached only while it
// listens: a change committed elsewhere is then seen at once. Errors are
// logged and retried with backoff.
func (s *AccessStore) Follow(ctx context.Context) {
	s.db.retryUntilDone(ctx, "following access changes", s.follow)
}

// Listening is closed once Follow has its first LISTEN in place: from then
// on lookups are cached.
func (s *AccessStore) Listening() <-chan struct{} { return s.listening }

func (s *AccessStore) follow(ctx context.Context) error {
	conn, err := s.db.listenConn(ctx, AccessChannel)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Notices sent while not listening are lost: start from nothing.
	s.cache.setFollowing(true)
	defer s.cache.setFollowing(false)
	s.listenOK.Do(func() { close(s.listening) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var key [sha256.Size]byte
		if h, ok := strings.CutPrefix(n.Payload, sessionNotice); ok && len(h) == 2*sha256.Size {
			if _, err := hex.Decode(key[:], []byte(h)); err == nil {
				s.cache.dropKey(key)
				continue
			}
		}
		s.cache.drop()
	}
}

// cachedCaller is a session's or a token's caller as last read.
type cachedCaller struct {
	caller    *gridmap.Caller
	csrf      string     // sessions only
	expiresAt *time.Time // nil: never
	lastSeen  time.Time  // sessions: the last request this process saw, for the idle timeout
	cachedAt  time.Time
}

// callerCache holds callers by the hash of their secret. It answers only
// while following. Every drop starts a new generation, and a lookup stores
// what it read only if no drop came between its reading and its storing:
// a read from before a revocation never outlives the revocation's notice.
type callerCache struct {
	mu        sync.Mutex
	following bool
	gen       uint64
	entries   map[[sha256.Size]byte]*cachedCaller
}

// generation returns the generation a lookup about to read the database
// stores its answer under.
func (c *callerCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of the entry for key, if following and it is fresh;
// seen marks it used now.
func (c *callerCache) get(key [sha256.Size]byte, now time.Time) (cachedCaller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if !c.following || e == nil || now.Sub(e.cachedAt) > accessCacheTTL {
		return cachedCaller{}, false
	}
	return *e, true
}

// stale returns a copy of the entry for key cached at most
// accessOutageGrace ago, following or not: the answer while the database
// is unreachable.
func (c *callerCache) stale(key [sha256.Size]byte, now time.Time) (cachedCaller, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || now.Sub(e.cachedAt) > accessOutageGrace {
		return cachedCaller{}, false
	}
	return *e, true
}

// seen records a request of a cached session at now.
func (c *callerCache) seen(key [sha256.Size]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && now.After(e.lastSeen) {
		e.lastSeen = now
	}
}

// put stores e unless the cache was dropped since gen or is not following.
func (c *callerCache) put(key [sha256.Size]byte, e *cachedCaller, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.following || gen != c.gen {
		return
	}
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]*cachedCaller{}
	}
	c.entries[key] = e
}

// dropKey forgets one entry. Like drop it starts a new generation, so a
// read of that entry under way is not stored.
func (c *callerCache) dropKey(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, key)
}

// drop forgets every entry.
func (c *callerCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = nil
}

// setFollowing starts or stops answering from the cache. Starting forgets
// everything (the notices sent while not listening are lost); stopping
// keeps the entries for stale, which answers only while the database is
// unreachable.
func (c *callerCache) setFollowing(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.following = on
	c.gen++
	if on {
		c.entries = nil
	}
}

// touchLimiter says when a session's last_seen_at or a token's
// last_used_at is due to be written again, so that a busy token writes
// once a minute rather than on every request.
type touchLimiter struct {
	mu      sync.Mutex
	written map[[sha256.Size]byte]time.Time
}

// due reports whether key was last written longer than every ago, and if
// so counts it written at now.
func (t *touchLimiter) due(key [sha256.Size]byte, now time.Time, every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.written[key]; ok && now.Sub(last) < every {
		return false
	}
	if t.written == nil {
		t.written = map[[sha256.Size]byte]time.Time{}
	}
	if len(t.written) >= 4096 {
		for k, last := range t.written {
			if now.Sub(last) >= every {
				delete(t.written, k)
			}
		}
	}
	t.written[key] = now
	return true
}

// wrote counts key written at now (a session's creation writes its
// last_seen_at).
func (t *touchLimiter) wrote(key [sha256.Size]byte, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written == nil {
		t.written = map[[sha256.Size]byte]time.Time{}
	}
	t.written[key] = now
}
