package postgres

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Outbox delivers what report events write to the outbox table to the
// departments' webhooks, at least once: each delivery is leased before it
// is sent and marked after, so a crash in between sends it again. Every
// POST carries Idempotency-Key (the outbox id) for receivers to drop
// repeats, and X-Gridmap-Signature: sha256=HMAC-SHA256(secret, body).
type Outbox struct {
	db     *DB
	client *http.Client
	// RetryBase is the first retry delay; each failure doubles it, up to
	// an hour.
	RetryBase time.Duration
	// Lease is how long a claimed delivery is held before another
	// instance may try it.
	Lease time.Duration
}

// NewOutbox returns an Outbox posting with client.
func NewOutbox(db *DB, client *http.Client) *Outbox {
	return &Outbox{db: db, client: client, RetryBase: 2 * time.Second, Lease: time.Minute}
}

// Deliver sends the deliveries that are due, up to 50, and reports how
// many succeeded.
func (o *Outbox) Deliver(ctx context.Context) (int, error) {
	rows, err := o.db.Pool.Query(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + $1 * interval '1 millisecond'
		WHERE id IN (SELECT id FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= now()
		             AND EXISTS (SELECT 1 FROM departments d WHERE d.code = outbox.department)
		             ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED)
		RETURNING id, url, payload, attempts, (SELECT webhook_secret FROM departments WHERE code = outbox.department)`,
		o.Lease.Milliseconds())
	if err != nil {
		return 0, translate(err, "outbox")
	}
	type delivery struct {
		id       int64
		url      string
		payload  []byte
		attempts int
		secret   string
	}
	var due []delivery
	for rows.Next() {
		var d delivery
		if err := rows.Scan(&d.id, &d.url, &d.payload, &d.attempts, &d.secret); err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, d)
	}
	if err := rows.Err(); err != nil {
		return 0, translate(err, "outbox")
	}
	ok := 0
	for _, d := range due {
		err := o.post(ctx, d.url, d.id, d.payload, d.secret)
		if err == nil {
			_, err = o.db.Pool.Exec(ctx, `UPDATE outbox SET delivered_at = now(), last_error = '' WHERE id = $1`, d.id)
			if err != nil {
				return ok, translate(err, "outbox")
			}
			ok++
			continue
		}
		delay := time.Duration(math.Min(float64(o.RetryBase)*math.Pow(2, float64(d.attempts-1)), float64(time.Hour)))
		if _, err := o.db.Pool.Exec(ctx, `UPDATE outbox SET next_attempt_at = now() + $2 * interval '1 millisecond', last_error = $3 WHERE id = $1`,
			d.id, delay.Milliseconds(), err.Error()); err != nil {
			return ok, translate(err, "outbox")
		}
	}
	return ok, nil
}

func (o *Outbox) post(ctx context.Context, url string, id int64, body []byte, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
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
