package postgres

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/jackc/pgx/v5"
)

// CategoryStore keeps the responsibility list (categories and the
// departments that handle them), the departments and the working-day
// calendar.
type CategoryStore struct{ db *DB }

// NewCategoryStore returns a CategoryStore over db.
func NewCategoryStore(db *DB) *CategoryStore { return &CategoryStore{db: db} }

var categoryCode = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func checkLimit(what string, l gridmap.Limit) error {
	switch l.Clock {
	case gridmap.ClockUrgentHours, gridmap.ClockWorkingHours, gridmap.ClockWorkingDays, gridmap.ClockCalendarDays:
	default:
		return gridmap.Errorf(gridmap.EINVALID, "%s.clock %q must be urgent_hours, working_hours, working_days or calendar_days", what, l.Clock)
	}
	if math.IsNaN(l.Value) || math.IsInf(l.Value, 0) || l.Value <= 0 || l.Value > 3650 {
		return gridmap.Errorf(gridmap.EINVALID, "%s.value %v must be a positive number of hours or days", what, l.Value)
	}
	return nil
}

// checkDuplicateWindow fills in the default duplicate window of c where
// it is absent and returns EINVALID for one out of range.
func checkDuplicateWindow(c *gridmap.Category) error {
	for _, w := range []struct {
		name     string
		v        **float64
		def, max float64
		unit     string
	}{
		{"duplicate_within_m", &c.DuplicateWithinM, gridmap.DefaultDuplicateWithinM, gridmap.MaxDuplicateWithinM, "metres"},
		{"duplicate_within_hours", &c.DuplicateWithinHours, gridmap.DefaultDuplicateWithinHours, gridmap.MaxDuplicateWithinHours, "hours"},
	} {
		if *w.v == nil {
			d := w.def
			*w.v = &d
		}
		if v := **w.v; math.IsNaN(v) || v < 0 || v > w.max {
			return gridmap.Errorf(gridmap.EINVALID, "%s %v must be from 0 (no duplicate linking) to %g %s", w.name, v, w.max, w.unit)
		}
	}
	return nil
}

// PutCategory creates or replaces a category. Returns EINVALID saying what
// to fix (unknown departments or parent included).
func (s *CategoryStore) PutCategory(ctx context.Context, c *gridmap.Category) (created bool, err error) {
	if !categoryCode.MatchString(c.Code) {
		return false, gridmap.Errorf(gridmap.EINVALID, "category code %q must be 1-64 letters, digits, '.', '_' or '-'", c.Code)
	}
	if strings.TrimSpace(c.Name) == "" {
		return false, gridmap.Errorf(gridmap.EINVALID, "category %s needs a name", c.Code)
	}
	if err := checkLimit("limit", c.Limit); err != nil {
		return false, err
	}
	var uv *float64
	var uc *string
	if c.UrgentLimit != nil {
		if err := checkLimit("urgent_limit", *c.UrgentLimit); err != nil {
			return false, err
		}
		uv, uc = &c.UrgentLimit.Value, &c.UrgentLimit.Clock
	}
	for step, l := range c.StepLimits {
		if !slices.Contains(dispatch.StepActions, step) {
			return false, gridmap.Errorf(gridmap.EINVALID, "step_limits names %q; steps are %v", step, dispatch.StepActions)
		}
		if err := checkLimit("step_limits."+step, l); err != nil {
			return false, err
		}
	}
	if err := checkDuplicateWindow(c); err != nil {
		return false, err
	}
	steps, _ := json.Marshal(c.StepLimits)
	if c.StepLimits == nil {
		steps = []byte("{}")
	}
	if c.Departments == nil {
		c.Departments = []string{}
	}
	var parent *string
	if c.Parent != "" {
		parent = &c.Parent
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		var missing []string
		if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(d), '{}') FROM unnest($1::text[]) d
			WHERE NOT EXISTS (SELECT 1 FROM departments WHERE code = d)`, c.Departments).Scan(&missing); err != nil {
			return err
		}
		if len(missing) > 0 {
			return gridmap.Errorf(gridmap.EINVALID, "category %s names departments that do not exist: %v; create them with PUT /v1/departments/{code}", c.Code, missing)
		}
		if parent != nil {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM categories WHERE code = $1)`, *parent).Scan(&ok); err != nil {
				return err
			}
			if !ok || *parent == c.Code {
				return gridmap.Errorf(gridmap.EINVALID, "parent category %q does not exist", *parent)
			}
		}
		var moved bool
		if err := tx.QueryRow(ctx, `WITH old AS (SELECT parent_code FROM categories WHERE code = $1)
			INSERT INTO categories (code, name, parent_code, departments, limit_value, limit_clock, urgent_value, urgent_clock, step_limits,
			  duplicate_within_m, duplicate_within_hours)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (code) DO UPDATE SET name = $2, parent_code = $3, departments = $4, limit_value = $5, limit_clock = $6,
			  urgent_value = $7, urgent_clock = $8, step_limits = $9, duplicate_within_m = $10, duplicate_within_hours = $11, updated_at = now()
			RETURNING (xmax = 0), updated_at, EXISTS (SELECT 1 FROM old WHERE old.parent_code IS DISTINCT FROM $3)`,
			c.Code, c.Name, parent, c.Departments, c.Limit.Value, c.Limit.Clock, uv, uc, steps, *c.DuplicateWithinM, *c.DuplicateWithinHours).
			Scan(&created, &c.UpdatedAt, &moved); err != nil {
			return err
		}
		if moved {
			// A category filter selects a subtree: report tiles filtered by
			// the old or the new parent's line change everywhere.
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '{}')`, ReportChannel); err != nil {
				return err
			}
		}
		return nil
	})
	return created, translate(err, "category "+c.Code)
}

const categoryColumns = `code, name, coalesce(parent_code, ''), departments, limit_value, limit_clock, urgent_value, urgent_clock, step_limits,
	duplicate_within_m, duplicate_within_hours, updated_at`

func scanCategory(row pgx.Row) (*gridmap.Category, error) {
	var c gridmap.Category
	var uv *float64
	var uc *string
	var steps []byte
	c.DuplicateWithinM, c.DuplicateWithinHours = new(float64), new(float64)
	if err := row.Scan(&c.Code, &c.Name, &c.Parent, &c.Departments, &c.Limit.Value, &c.Limit.Clock, &uv, &uc, &steps,
		c.DuplicateWithinM, c.DuplicateWithinHours, &c.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(steps, &c.StepLimits); err != nil {
		return nil, err
	}
	if len(c.StepLimits) == 0 {
		c.StepLimits = nil
	}
	if uv != nil && uc != nil {
		c.UrgentLimit = &gridmap.Limit{Value: *uv, Clock: *uc}
	}
	return &c, nil
}

// Category returns one category. Returns ENOTFOUND.
func (s *CategoryStore) Category(ctx context.Context, code string) (*gridmap.Category, error) {
	c, err := scanCategory(s.db.Pool.QueryRow(ctx, `SELECT `+categoryColumns+` FROM categories WHERE code = $1`, code))
	if err == pgx.ErrNoRows {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "category %q does not exist", code)
	}
	return c, translate(err, "category "+code)
}

// Categories lists every category by code.
func (s *CategoryStore) Categories(ctx context.Context) ([]*gridmap.Category, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+categoryColumns+` FROM categories ORDER BY code`)
	if err != nil {
		return nil, translate(err, "categories")
	}
	defer rows.Close()
	var out []*gridmap.Category
	for rows.Next() {
		c, err := scanCategory(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, translate(rows.Err(), "categories")
}

// PutCalendarDay sets whether a date is a working day. Returns EINVALID
// for a malformed date.
func (s *CategoryStore) PutCalendarDay(ctx context.Context, d gridmap.CalendarDay) error {
	if _, err := time.Parse(time.DateOnly, d.Date); err != nil {
		return gridmap.Errorf(gridmap.EINVALID, "date %q must be YYYY-MM-DD", d.Date)
	}
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO calendar_days (day, working, name) VALUES ($1::date, $2, $3)
		ON CONFLICT (day) DO UPDATE SET working = $2, name = $3`, d.Date, d.Working, d.Name)
	return translate(err, "calendar day "+d.Date)
}

// CalendarDays lists the dates that break the weekday rule.
func (s *CategoryStore) CalendarDays(ctx context.Context) ([]gridmap.CalendarDay, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), working, name FROM calendar_days ORDER BY day`)
	if err != nil {
		return nil, translate(err, "calendar")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (gridmap.CalendarDay, error) {
		var d gridmap.CalendarDay
		err := r.Scan(&d.Date, &d.Working, &d.Name)
		return d, err
	})
}

// PutDepartment creates or replaces a department. secret replaces the
// secret its webhook deliveries are signed with ("" removes it); nil keeps
// the stored one, so a department read back and put again stays signed.
// Returns EINVALID for an unknown layer or a bad webhook address.
func (s *CategoryStore) PutDepartment(ctx context.Context, d *gridmap.Department, secret *string) (created bool, err error) {
	if !categoryCode.MatchString(d.Code) {
		return false, gridmap.Errorf(gridmap.EINVALID, "department code %q must be 1-64 letters, digits, '.', '_' or '-'", d.Code)
	}
	if strings.TrimSpace(d.Name) == "" {
		return false, gridmap.Errorf(gridmap.EINVALID, "department %s needs a name", d.Code)
	}
	if d.WebhookURL != "" && !strings.HasPrefix(d.WebhookURL, "http://") && !strings.HasPrefix(d.WebhookURL, "https://") {
		return false, gridmap.Errorf(gridmap.EINVALID, "webhook_url %q must be an http:// or https:// address", d.WebhookURL)
	}
	var layer *string
	if d.Layer != "" {
		layer = &d.Layer
	}
	err = s.db.Pool.QueryRow(ctx, `INSERT INTO departments (code, name, webhook_url, layer_id, webhook_secret) VALUES ($1, $2, $3, $4, coalesce($5::text, ''))
		ON CONFLICT (code) DO UPDATE SET name = $2, webhook_url = $3, layer_id = $4,
		  webhook_secret = coalesce($5, departments.webhook_secret), updated_at = now()
		RETURNING (xmax = 0), updated_at`, d.Code, d.Name, d.WebhookURL, layer, secret).Scan(&created, &d.UpdatedAt)
	if isSQLState(err, "23503") {
		return false, gridmap.Errorf(gridmap.EINVALID, "layer %q of department %s does not exist", d.Layer, d.Code)
	}
	return created, translate(err, "department "+d.Code)
}

// Department returns one department. Returns ENOTFOUND.
func (s *CategoryStore) Department(ctx context.Context, code string) (*gridmap.Department, error) {
	var d gridmap.Department
	err := s.db.Pool.QueryRow(ctx, `SELECT code, name, webhook_url, coalesce(layer_id, ''), updated_at FROM departments WHERE code = $1`, code).
		Scan(&d.Code, &d.Name, &d.WebhookURL, &d.Layer, &d.UpdatedAt)
	if err == pgx.ErrNoRows {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "department %q does not exist", code)
	}
	return &d, translate(err, "department "+code)
}

// Departments lists every department by code.
func (s *CategoryStore) Departments(ctx context.Context) ([]*gridmap.Department, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT code, name, webhook_url, coalesce(layer_id, ''), updated_at FROM departments ORDER BY code`)
	if err != nil {
		return nil, translate(err, "departments")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Department, error) {
		var d gridmap.Department
		err := r.Scan(&d.Code, &d.Name, &d.WebhookURL, &d.Layer, &d.UpdatedAt)
		return &d, err
	})
}
