package postgres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Outbox delivers what report events write to the outbox table to the
// departments' webhooks, at least once: each delivery is leased before it
// is sent and marked after, so a crash in between sends it again. Every
// POST carries Idempotency-Key (the outbox id) for receivers to drop
// repeats, and X-Gridmap-Signature: sha256=HMAC-SHA256(secret, body).
//
// Departments are served side by side, each in the order of its
// deliveries: a receiver that fails or hangs holds back only its own
// department. Its first failure in a round puts the rest of its deliveries
// of that round back, to be tried after the same backoff.
type Outbox struct {
	db     *DB
	client *http.Client
	// RetryBase is the first retry delay; each failure doubles it, up to
	// an hour.
	RetryBase time.Duration
	// Lease is how long a claimed delivery is held before another
	// instance may try it: longer than a round's deliveries of one
	// department can take (outboxPerDepartment times Timeout, the
	// departments of a round running side by side).
	Lease time.Duration
	// Timeout bounds one POST, its answer included.
	Timeout time.Duration
}

// outboxPerDepartment is how many deliveries of one department a round
// claims at most: a round of one department takes at most that many times
// Timeout, within the Lease.
const outboxPerDepartment = 5

// NewOutbox returns an Outbox posting with client.
func NewOutbox(db *DB, client *http.Client) *Outbox {
	return &Outbox{db: db, client: client, RetryBase: 2 * time.Second, Lease: time.Minute, Timeout: 10 * time.Second}
}

// outboxClaimSQL leases the due deliveries, the first outboxPerDepartment
// of each department by id, at most 50, for $1 ms. A delivery is due only
// when no earlier one of its department is waiting (leased by a round
// under way, or backing off after a failure): a department's deliveries go
// one round at a time, across instances too, in order, and a failing
// receiver's backoff holds back all of them.
const outboxClaimSQL = `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + $1 * interval '1 millisecond'
	WHERE id IN (
	  SELECT id FROM (
	    SELECT o.id, row_number() OVER (PARTITION BY o.department ORDER BY o.id) AS n
	    FROM outbox o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= now()
	      AND EXISTS (SELECT 1 FROM departments d WHERE d.code = o.department)
	      AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.department = o.department AND p.delivered_at IS NULL
	                      AND p.id < o.id AND p.next_attempt_at > now())) due
	  WHERE n <= $2 ORDER BY id LIMIT 50)
	  AND delivered_at IS NULL AND next_attempt_at <= now()
	RETURNING id, department, url, payload, attempts, (SELECT webhook_secret FROM departments WHERE code = outbox.department)`

// delivery is one claimed webhook POST.
type delivery struct {
	id         int64
	department string
	url        string
	payload    []byte
	attempts   int
	secret     string
}

// Deliver sends the deliveries that are due, up to 50, and reports how
// many succeeded.
func (o *Outbox) Deliver(ctx context.Context) (int, error) {
	rows, err := o.db.Pool.Query(ctx, outboxClaimSQL, o.Lease.Milliseconds(), outboxPerDepartment)
	if err != nil {
		return 0, translate(err, "outbox")
	}
	byDepartment := map[string][]delivery{}
	var order []string
	for rows.Next() {
		var d delivery
		if err := rows.Scan(&d.id, &d.department, &d.url, &d.payload, &d.attempts, &d.secret); err != nil {
			rows.Close()
			return 0, err
		}
		if byDepartment[d.department] == nil {
			order = append(order, d.department)
		}
		byDepartment[d.department] = append(byDepartment[d.department], d)
	}
	if err := rows.Err(); err != nil {
		return 0, translate(err, "outbox")
	}
	for _, due := range byDepartment {
		// UPDATE ... RETURNING keeps no order: a department's go by id.
		slices.SortFunc(due, func(a, b delivery) int { return cmp.Compare(a.id, b.id) })
	}
	var ok atomic.Int64
	// A department's failure is its own: the others go on, all at once
	// (at most 50), so that each round ends within the lease. What was
	// sent is recorded even when ctx ends meanwhile.
	var g errgroup.Group
	for _, dep := range order {
		g.Go(func() error {
			n, err := o.deliverDepartment(ctx, byDepartment[dep])
			ok.Add(int64(n))
			return err
		})
	}
	err = g.Wait()
	return int(ok.Load()), err
}

// deliverDepartment sends one department's deliveries in order, until the
// first failure, which reschedules it and the rest after its backoff.
func (o *Outbox) deliverDepartment(ctx context.Context, due []delivery) (int, error) {
	for i, d := range due {
		err := o.post(ctx, d.url, d.id, d.payload, d.secret)
		ctx := context.WithoutCancel(ctx)
		if err == nil {
			if _, err := o.db.Pool.Exec(ctx, `UPDATE outbox SET delivered_at = now(), last_error = '' WHERE id = $1`, d.id); err != nil {
				return i, translate(err, "outbox")
			}
			continue
		}
		delay := time.Duration(math.Min(float64(o.RetryBase)*math.Pow(2, float64(d.attempts-1)), float64(time.Hour)))
		ids := make([]int64, 0, len(due)-i)
		for _, r := range due[i:] {
			ids = append(ids, r.id)
		}
		// The rest were not tried: their attempt is given back.
		if _, err := o.db.Pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now() + $2 * interval '1 millisecond',
			last_error = CASE WHEN id = $3 THEN $4 ELSE last_error END, attempts = attempts - CASE WHEN id = $3 THEN 0 ELSE 1 END
			WHERE id = ANY($1)`, ids, delay.Milliseconds(), d.id, err.Error()); err != nil {
			return i, translate(err, "outbox")
		}
		return i, nil
	}
	return len(due), nil
}

func (o *Outbox) post(ctx context.Context, url string, id int64, body []byte, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", strconv.FormatInt(id, 10))
	req.Header.Set("User-Agent", "gridmap-webhook/1")
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req.Header.Set("X-Gridmap-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	res, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", res.StatusCode)
	}
	return nil
}

// Follow delivers every interval until ctx ends.
func (o *Outbox) Follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := o.Deliver(ctx); err != nil && ctx.Err() == nil {
			o.db.Logger.Warn("webhook delivery failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
