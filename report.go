package gridmap

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// Clocks a time limit can run on.
const (
	ClockUrgentHours  = "urgent_hours"  // continuous hours
	ClockWorkingHours = "working_hours" // 08:00-12:00 and 14:00-18:00 of working days
	ClockWorkingDays  = "working_days"
	ClockCalendarDays = "calendar_days"
)

// Limit is a time limit: Value units of Clock.
type Limit struct {
	Value float64 `json:"value"`
	Clock string  `json:"clock"`
}

// Category is one line of the responsibility list (责任清单): what a kind of
// report is, which departments handle it and how long they have.
type Category struct {
	Code        string   `json:"code"`
	Name        string   `json:"name"`
	Parent      string   `json:"parent,omitempty"`
	Departments []string `json:"departments"`
	// Limit applies to the whole report from its reporting; UrgentLimit
	// replaces it for urgent reports.
	Limit       Limit  `json:"limit"`
	UrgentLimit *Limit `json:"urgent_limit,omitempty"`
	// StepLimits bounds each step, keyed by the action that ends it
	// (register, dispatch, start, resolve, verify, close).
	StepLimits map[string]Limit `json:"step_limits,omitempty"`
	// DuplicateWithinM and DuplicateWithinHours say how near in metres
	// and in hours of an open report of this category a new one is
	// linked to it as a probable duplicate; 0 in either turns linking off.
	// Absent from a PUT, they take DefaultDuplicateWithinM (0: linking is
	// a category's choice, off until it sets a distance) and
	// DefaultDuplicateWithinHours; a category read back always has them.
	DuplicateWithinM     *float64  `json:"duplicate_within_m,omitempty"`
	DuplicateWithinHours *float64  `json:"duplicate_within_hours,omitempty"`
	UpdatedAt            time.Time `json:"updated_at"`
}

// LinksDuplicates reports whether reports of category c are linked to
// probable duplicates at intake: both bounds set and above zero (as
// postgres' duplicate link, which decides, checks them).
func (c *Category) LinksDuplicates() bool {
	return c.DuplicateWithinM != nil && *c.DuplicateWithinM > 0 && c.DuplicateWithinHours != nil && *c.DuplicateWithinHours > 0
}

// Duplicate linking defaults and bounds (see Category).
const (
	DefaultDuplicateWithinM     = 0.0
	DefaultDuplicateWithinHours = 72.0
	MaxDuplicateWithinM         = 500.0
	MaxDuplicateWithinHours     = 8760.0
)

// Department is a government department reports are sent to; Layer names
// its departmental grid layer, whose grid at a report's location is the
// unit that handles it.
// Its webhook secret is write-only: it is set through PutDepartment and
// never read back.
type Department struct {
	Code       string    `json:"code"`
	Name       string    `json:"name"`
	WebhookURL string    `json:"webhook_url,omitempty"`
	Layer      string    `json:"layer,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// CalendarDay overrides the weekday rule for one date.
type CalendarDay struct {
	Date    string `json:"date"` // 2006-01-02
	Working bool   `json:"working"`
	Name    string `json:"name,omitempty"`
}

// Report statuses: the seven steps, and the side states.
const (
	StatusReported   = "reported"    // 信息采集
	StatusRegistered = "registered"  // 案卷建立
	StatusDispatched = "dispatched"  // 任务派遣
	StatusInProgress = "in_progress" // 任务处理
	StatusResolved   = "resolved"    // 处理反馈
	StatusVerified   = "verified"    // 核查
	StatusClosed     = "closed"      // 结案
	StatusRejected   = "rejected"    // not a case: refused at registration
	StatusSuspended  = "suspended"   // 挂账: waiting on something outside the workflow
)

// Report is a geolocated problem reported by a citizen, a grid worker, a
// hotline or a sensor, and its assignment.
type Report struct {
	ID          int64             `json:"id"`
	ExternalID  string            `json:"external_id"`
	Category    string            `json:"category"`
	Description string            `json:"description"`
	Location    *geojson.Geometry `json:"location"` // WGS84
	// OriginalLocation is the location as sent, in CRS, when that was not WGS84.
	OriginalLocation *geojson.Geometry `json:"original_location,omitempty"`
	CRS              string            `json:"crs"`
	AccuracyM        float64           `json:"accuracy_m"`
	Source           string            `json:"source"`
	Urgent           bool              `json:"urgent"`
	ReportedAt       time.Time         `json:"reported_at"`
	ReceivedAt       time.Time         `json:"received_at"`
	Status           string            `json:"status"`
	Assignment       *Assignment       `json:"assignment"`
	// Tasks are the departments called in by escalation, each to report in.
	Tasks []Task `json:"tasks"`
	// DuplicateOf is the open report of the same category, near in place
	// and time, this one was linked to at intake as a probable duplicate
	// (the earliest such); Duplicates are the first 100 reports linked to
	// this one, by id (GET /v1/reports?duplicate_of= pages through them all).
	DuplicateOf *int64    `json:"duplicate_of,omitempty"`
	Duplicates  []int64   `json:"duplicates,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Assignee is the worker (an account's username) the report was last
	// dispatched to, "" when the last dispatch named none.
	Assignee string `json:"assignee,omitempty"`
	// FiledBy is the account (its username) that filed the report, a grid
	// worker reporting what they found; "" when filed with an API token.
	FiledBy string `json:"filed_by,omitempty"`
}

// Task is a department called in on a report (吹哨), which must report in
// (报到) by its deadline.
type Task struct {
	Department   string     `json:"department"`
	Status       string     `json:"status"` // open or reported_in
	ReportInDue  time.Time  `json:"report_in_due"`
	ReportedInAt *time.Time `json:"reported_in_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
}

// Owner is a grid that owns (or shares) a report.
type Owner struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"`
	Level     string    `json:"level"`
	Chain     []GridRef `json:"chain,omitempty"`
	DistanceM float64   `json:"distance_m"`
	// Share is the part of a line or polygon location inside the grid (0-1).
	Share  float64 `json:"share,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

// DepartmentUnit is a department with, when it has its own layer, the unit
// of that layer at the report's location.
type DepartmentUnit struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
	// Unit is the department's grid at the location (a police beat).
	Unit *GridRef `json:"unit,omitempty"`
}

// Assignment flags.
const (
	FlagOutsideCoverage = "outside_coverage" // no grid covers the location
	FlagDutyDesk        = "duty_desk"        // no grid near enough either: the district duty desk has it
)

// Assignment is who owns a report and by when, computed on one version of
// the boundaries.
type Assignment struct {
	Layer       string           `json:"layer"`
	Primary     *Owner           `json:"primary"`
	CoOwners    []Owner          `json:"co_owners"`
	Tier        string           `json:"tier"`
	Departments []DepartmentUnit `json:"departments"`
	DueAt       time.Time        `json:"due_at"`
	// NextStep is the action the workflow waits for, due by StepDueAt when
	// the category limits that step.
	NextStep  string     `json:"next_step,omitempty"`
	StepDueAt *time.Time `json:"step_due_at,omitempty"`
	Flags     []string   `json:"flags,omitempty"`
	// BoundaryVersion is the layer's data version the assignment used;
	// the grid versions are in the owners' chains.
	BoundaryVersion int64  `json:"boundary_version"`
	Explanation     string `json:"explanation"`
}

// ReportEvent is one step of a report's history.
type ReportEvent struct {
	ID          int64    `json:"id"`
	ReportID    int64    `json:"report_id"`
	Action      string   `json:"action"`
	From        string   `json:"from,omitempty"`
	To          string   `json:"to"`
	Actor       string   `json:"actor,omitempty"`
	Note        string   `json:"note,omitempty"`
	Departments []string `json:"departments,omitempty"`
	// Assignee names a worker (a reporter account's username) with a
	// dispatch move; the event's Data records it.
	Assignee string          `json:"-"`
	Data     json.RawMessage `json:"data,omitempty"`
	At       time.Time       `json:"at"`
}

// Report list orders.
const (
	SortArrival  = "arrival"  // newest first: id descending (the default)
	SortDeadline = "deadline" // due_at ascending, then id: the most urgent first
)

// ReportFilter selects reports. Every filter set narrows the selection.
type ReportFilter struct {
	// Status is one status, or "open" for every status still needing
	// work, or "done" for closed and rejected.
	Status   string
	Grid     string
	Category string
	IDs      []int64
	Since    *time.Time // reported at or after
	Until    *time.Time // reported before
	BBox     *orb.Bound
	Tier     string // one of the tiers (TierGrid, ...)
	Source   string // exactly
	Urgent   *bool
	// Overdue selects open reports whose due_at has passed.
	Overdue bool
	// Mine selects the reports the context's caller has acted on: one of
	// their events names the caller's Actor, alone or acting for someone.
	Mine bool
	// DuplicateOf selects the reports linked to this report as its
	// probable duplicates (0: no such filter).
	DuplicateOf int64
	// Sort is SortArrival ("" too) or SortDeadline.
	Sort  string
	Limit int
	// Cursor is the next cursor of the previous page, of the same Sort.
	Cursor *ReportCursor
}

// ReportCursor is where the next page of a report list starts: after the
// report with ID, which in deadline order is due at DueAt. Clients see it
// as an opaque string (String, ParseReportCursor).
type ReportCursor struct {
	Sort  string
	DueAt time.Time // SortDeadline only
	ID    int64
}

// String encodes the cursor: the bare id in arrival order (as cursors were
// before there was a choice of order), "d<due_at in Unix microseconds>_<id>"
// in deadline order.
func (c *ReportCursor) String() string {
	if c.Sort == SortDeadline {
		return "d" + strconv.FormatInt(c.DueAt.UnixMicro(), 10) + "_" + strconv.FormatInt(c.ID, 10)
	}
	return strconv.FormatInt(c.ID, 10)
}

// ParseReportCursor reads a cursor String gave out for a list in order
// sort. Returns EINVALID for anything else, a cursor of the other order
// included.
func ParseReportCursor(sort, s string) (*ReportCursor, error) {
	c := &ReportCursor{Sort: sort}
	ok := false
	switch sort {
	case SortArrival, "":
		c.Sort = SortArrival
		c.ID, ok = positiveInt(s)
	case SortDeadline:
		if rest, found := strings.CutPrefix(s, "d"); found {
			due, id, _ := strings.Cut(rest, "_")
			micro, err := strconv.ParseInt(due, 10, 64)
			c.DueAt = time.UnixMicro(micro)
			c.ID, ok = positiveInt(id)
			ok = ok && err == nil
		}
	}
	if !ok {
		return nil, Errorf(EINVALID, "cursor %q is not one this service gave out for sort=%s; pass the \"next\" value of the previous page, with the same sort", s, c.Sort)
	}
	return c, nil
}

// positiveInt reads a whole number above zero.
func positiveInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// ReportCounts counts the reports a filter selects.
type ReportCounts struct {
	// Counts has every status that has reports, with their number.
	Counts  map[string]int64 `json:"counts"`
	Open    int64            `json:"open"`
	Overdue int64            `json:"overdue"`
	Total   int64            `json:"total"`
}

// ReportService takes reports in and follows them through the workflow.
type ReportService interface {
	// CreateReport stores a report with its assignment and first event in
	// one durable transaction. created is false when a report with the same
	// external_id and content exists (it is returned). Returns EUNPROCESSABLE
	// for a report that breaks a rule, ECONFLICT for an external_id reused
	// with other content.
	CreateReport(ctx context.Context, r *Report) (created bool, err error)
	// Report returns one report. Returns ENOTFOUND.
	Report(ctx context.Context, id int64) (*Report, error)
	// Reports returns a page of reports in the filter's order and the
	// cursor of the next page (nil on the last one). Returns EINVALID for a
	// filter that cannot be applied (an unknown category, Mine without a
	// signed-in caller, a cursor of another order).
	Reports(ctx context.Context, f ReportFilter) ([]*Report, *ReportCursor, error)
	// ReportCounts counts the reports the filter selects by status, as
	// Reports would list them; Status, Sort, Limit and Cursor are ignored.
	// Returns EINVALID as Reports does.
	ReportCounts(ctx context.Context, f ReportFilter) (*ReportCounts, error)
	// AddEvent moves a report through the workflow. Returns ENOTFOUND,
	// ECONFLICT for a move the workflow does not allow from the current
	// status, EINVALID for an assignee that is not a worker's account or
	// comes with another move than dispatch.
	AddEvent(ctx context.Context, id int64, e *ReportEvent) (*Report, error)
	// Events returns a report's history, oldest first.
	Events(ctx context.Context, id int64) ([]*ReportEvent, error)
}

// CategoryService keeps the responsibility list and the calendar.
type CategoryService interface {
	PutCategory(ctx context.Context, c *Category) (created bool, err error)
	Category(ctx context.Context, code string) (*Category, error)
	Categories(ctx context.Context) ([]*Category, error)
	PutCalendarDay(ctx context.Context, d CalendarDay) error
	CalendarDays(ctx context.Context) ([]CalendarDay, error)
	// PutDepartment creates or replaces a department. secret replaces the
	// secret its webhook deliveries are signed with ("" removes it); nil
	// keeps the stored one.
	PutDepartment(ctx context.Context, d *Department, secret *string) (created bool, err error)
	Department(ctx context.Context, code string) (*Department, error)
	Departments(ctx context.Context) ([]*Department, error)
}
