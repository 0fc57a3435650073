package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// Audit appends entries to the audit log in one statement, and fills
// their IDs and At (the database's clock, whatever At held). Before and
// After are stored as JSON. Returns EINVALID for an entry with no action.
func (s *AccessStore) Audit(ctx context.Context, entries ...*gridmap.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	n := len(entries)
	actors, roles, actions, targets := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	requests, addresses, statuses := make([]string, n), make([]string, n), make([]int32, n)
	befores, afters := make([]*string, n), make([]*string, n)
	// When the write came, not when its entry is written; the database's
	// clock for entries made without a time.
	ats := make([]*time.Time, n)
	for i, e := range entries {
		if e.Action == "" {
			return gridmap.Errorf(gridmap.EINVALID, "an audit entry needs an action")
		}
		var err error
		if befores[i], err = jsonOrNull(e.Before); err != nil {
			return err
		}
		if afters[i], err = jsonOrNull(e.After); err != nil {
			return err
		}
		actors[i], roles[i], actions[i], targets[i] = e.Actor, e.Role, e.Action, e.Target
		requests[i], addresses[i], statuses[i] = e.RequestID, e.Address, int32(e.Status)
		if !e.At.IsZero() {
			ats[i] = &e.At
		}
	}
	// Identities are drawn in the order the rows are made, which is the
	// order of the entries.
	rows, err := s.db.Pool.Query(ctx, `INSERT INTO audit_log (actor, role, action, target, request_id, status, address, before, after, at)
		SELECT actor, role, action, target, request_id, status, address, before::jsonb, after::jsonb, coalesce(at, now())
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::timestamptz[])
		  WITH ORDINALITY AS e (actor, role, action, target, request_id, status, address, before, after, at, n)
		ORDER BY n
		RETURNING id, at`, actors, roles, actions, targets, requests, statuses, addresses, befores, afters, ats)
	if err != nil {
		return translate(err, "writing the audit log")
	}
	written, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.AuditEntry, error) {
		var e gridmap.AuditEntry
		err := r.Scan(&e.ID, &e.At)
		return e, err
	})
	if err != nil {
		return translate(err, "writing the audit log")
	}
	slices.SortFunc(written, func(a, b gridmap.AuditEntry) int { return cmp.Compare(a.ID, b.ID) })
	for i, e := range entries {
		e.ID, e.At = written[i].ID, written[i].At
	}
	return nil
}

// jsonOrNull marshals v, nil staying SQL NULL.
func jsonOrNull(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, gridmap.Errorf(gridmap.EINVALID, "an audit entry's version cannot be written as JSON: %v", err)
	}
	s := string(b)
	return &s, nil
}

// Audit log pages.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditLog returns a page of entries, newest first, and the cursor of the
// next page (0 after the last). From is inclusive, To exclusive; Target
// is a plain prefix (no wildcards). Before and After come back as
// json.RawMessage. Returns EINVALID for a negative limit or cursor.
func (s *AccessStore) AuditLog(ctx context.Context, f gridmap.AuditFilter) ([]*gridmap.AuditEntry, int64, error) {
	if f.Limit < 0 || f.Cursor < 0 {
		return nil, 0, gridmap.Errorf(gridmap.EINVALID, "limit and cursor cannot be negative")
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	var where []string
	var args []any
	cond := func(sql string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			sql = strings.Replace(sql, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		where = append(where, sql)
	}
	if f.Actor != "" {
		cond("actor = ?", f.Actor)
	}
	if f.Target != "" {
		// A range the text_pattern_ops index answers, as a parameter too:
		// every text starting with the prefix sorts between the prefix and
		// the prefix followed by the last code point.
		cond("target ~>=~ ? AND target ~<~ ? AND starts_with(target, ?)", f.Target, f.Target+"\U0010FFFF", f.Target)
	}
	if f.From != nil {
		cond("at >= ?", *f.From)
	}
	if f.To != nil {
		cond("at < ?", *f.To)
	}
	if f.Cursor > 0 {
		cond("id < ?", f.Cursor)
	}
	sql := `SELECT id, at, actor, role, action, target, request_id, status, address, before, after FROM audit_log`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	sql += " ORDER BY id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, 0, translate(err, "reading the audit log")
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.AuditEntry, error) {
		var e gridmap.AuditEntry
		var before, after []byte
		if err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Role, &e.Action, &e.Target, &e.RequestID, &e.Status, &e.Address, &before, &after); err != nil {
			return nil, err
		}
		if before != nil {
			e.Before = json.RawMessage(before)
		}
		if after != nil {
			e.After = json.RawMessage(after)
		}
		return &e, nil
	})
	if err != nil {
		return nil, 0, translate(err, "reading the audit log")
	}
	var next int64
	if len(entries) > limit {
		entries = entries[:limit]
		next = entries[limit-1].ID
	}
	return entries, next, nil
}
