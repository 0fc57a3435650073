package gridmap

import (
	"context"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Leaders (包联领导) are accounts given grids to look after (包联): they go
// down to them (下沉) and check in there (报到), so many times a month. Any
// account can be made a leader by giving it grids; giving it none makes it
// a leader no more.

// LeaderGrid is one grid a leader looks after. Name and Level are
// read-only.
type LeaderGrid struct {
	Layer string `json:"layer"`
	Code  string `json:"code"`
	Name  string `json:"name,omitempty"`
	Level string `json:"level,omitempty"`
}

// LeaderAssignments are the grids of one leader and how often a month the
// leader must visit them. UpdatedAt and UpdatedBy are read-only.
type LeaderAssignments struct {
	Username       string       `json:"username"`
	Grids          []LeaderGrid `json:"grids"`
	VisitsPerMonth int          `json:"visits_per_month"`
	UpdatedAt      time.Time    `json:"updated_at"`
	UpdatedBy      string       `json:"updated_by,omitempty"`
}

// Limits of assignments.
const (
	MaxLeaderGrids     = 200
	MaxVisitsPerMonth  = 100
	MaxCheckInNote     = 2000 // characters
	MaxPhotoURL        = 2000 // bytes
	MaxCheckInAccuracy = 5000 // metres: past this a fix says nothing of where one is
	// CheckInAccuracyCap is the most of a check-in's stated accuracy that
	// widens an assigned grid: a fix worse than 100 m is a cell tower or
	// Wi-Fi guess (a phone indoors, an office miles off), and letting it
	// count would make a desk a visit. A check-in stating worse is a visit
	// only when its point lies inside the grid; otherwise it is outside
	// and imprecise.
	CheckInAccuracyCap = 100 // metres
	MaxCheckInClientID = 100 // bytes
	// CheckInPast is how long after the fact a check-in is still taken (a
	// phone offline in a basement sends it later).
	CheckInPast = 7 * 24 * time.Hour
)

// Check returns EINVALID saying what to fix in assignments' own fields;
// whether the grids exist is the store's to check.
func (a *LeaderAssignments) Check() error {
	switch {
	case a.Grids == nil:
		return Errorf(EINVALID, `grids is required: a list of {"layer", "code"} (an empty list makes the account a leader no more)`)
	case len(a.Grids) > MaxLeaderGrids:
		return Errorf(EINVALID, "grids lists %d; at most %d", len(a.Grids), MaxLeaderGrids)
	case a.VisitsPerMonth < 0 || a.VisitsPerMonth > MaxVisitsPerMonth:
		return Errorf(EINVALID, "visits_per_month %d must be a whole number from 0 to %d", a.VisitsPerMonth, MaxVisitsPerMonth)
	}
	seen := map[LeaderGrid]bool{}
	for i, g := range a.Grids {
		if g.Layer == "" || g.Code == "" {
			return Errorf(EINVALID, `grids[%d] needs "layer" and "code"`, i)
		}
		if err := CheckText("grids["+itoa(i)+"]", g.Layer+g.Code); err != nil {
			return err
		}
		k := LeaderGrid{Layer: g.Layer, Code: g.Code}
		if seen[k] {
			return Errorf(EINVALID, "grids[%d]: grid %s of layer %s is listed twice", i, g.Code, g.Layer)
		}
		seen[k] = true
	}
	return nil
}

// CheckIn is a leader's check-in (下沉报到) at a place. Lon and Lat are
// WGS84 (converted from CRS when sent in another); the fields after
// ClientID are the service's answer. A check-in is a Visit of one grid
// (Layer, Grid): the finest assigned grid whose current outline covers the
// point, else the nearest assigned grid within max(the layer's tolerance,
// min(AccuracyM, CheckInAccuracyCap)) metres (a grid below an assigned one
// lies inside it). Otherwise it is outside, DistanceM metres from the
// nearest assigned grid, and Imprecise when AccuracyM was worse than
// CheckInAccuracyCap. ClientID, when sent, names the check-in for retries:
// one per account, a retry stores nothing and answers the stored one.
type CheckIn struct {
	ID       int64   `json:"id"`
	Username string  `json:"username"`
	Lon      float64 `json:"lon"`
	Lat      float64 `json:"lat"`
	CRS      string  `json:"crs"`
	// Original is the point as sent, [lon, lat], when CRS is not WGS84.
	Original  []float64 `json:"original,omitempty"`
	AccuracyM float64   `json:"accuracy_m"`
	At        time.Time `json:"t"`
	Note      string    `json:"note,omitempty"`
	PhotoURL  string    `json:"photo_url,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	// Person, when sent, must name the signed-in account: its username or
	// the name of the grid person it is linked to.
	Person    string   `json:"-"`
	Visit     bool     `json:"visit"`
	Imprecise bool     `json:"imprecise"`
	Layer     *string  `json:"layer"`
	Grid      *string  `json:"grid"`
	DistanceM *float64 `json:"distance_m"`
}

// Check returns EINVALID saying what to fix in a check-in as sent (Lon and
// Lat already WGS84), and fills in At (now) when it is zero.
func (c *CheckIn) Check(now time.Time) error {
	if err := CheckLonLat(c.Lon, c.Lat); err != nil {
		return err
	}
	if c.At.IsZero() {
		c.At = now
	}
	switch {
	case math.IsNaN(c.AccuracyM) || c.AccuracyM < 0 || c.AccuracyM > MaxCheckInAccuracy:
		return Errorf(EINVALID, "accuracy_m %v must be a number of metres from 0 to %d", c.AccuracyM, MaxCheckInAccuracy)
	case c.At.After(now.Add(5 * time.Minute)):
		return Errorf(EINVALID, "t %s is in the future; send the time of the check-in (or leave t out for now)", c.At.Format(time.RFC3339))
	case c.At.Before(now.Add(-CheckInPast)):
		return Errorf(EINVALID, "t %s is more than %d days ago; check-ins are taken within a week", c.At.Format(time.RFC3339), int(CheckInPast.Hours()/24))
	case utf8.RuneCountInString(c.Note) > MaxCheckInNote:
		return Errorf(EINVALID, "note has more than %d characters", MaxCheckInNote)
	case len(c.ClientID) > MaxCheckInClientID:
		return Errorf(EINVALID, "client_id has more than %d bytes", MaxCheckInClientID)
	}
	for what, v := range map[string]string{"note": c.Note, "photo_url": c.PhotoURL, "client_id": c.ClientID, "person": c.Person} {
		if err := CheckText(what, v); err != nil {
			return err
		}
	}
	if c.PhotoURL != "" {
		u, err := url.Parse(c.PhotoURL)
		if err != nil || len(c.PhotoURL) > MaxPhotoURL || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			strings.ContainsAny(c.PhotoURL, " \t\r\n") {
			return Errorf(EINVALID, "photo_url must be an http:// or https:// address of at most %d bytes", MaxPhotoURL)
		}
	}
	return nil
}

// LeaderRow is one leader's figures over a window (GET /v1/leaders).
type LeaderRow struct {
	Username       string       `json:"username"`
	DisplayName    string       `json:"display_name"`
	Grids          []LeaderGrid `json:"grids"`
	VisitsPerMonth int          `json:"visits_per_month"`
	// RequiredVisits is VisitsPerMonth prorated over the window
	// (RequiredVisits).
	RequiredVisits float64 `json:"required_visits"`
	Visits         int     `json:"visits"`
	Outside        int     `json:"outside"`
	// Visits counts distinct (grid, day in the deployment's time zone) of
	// the window's visits: checking in twice at one grid on one day is
	// one visit.
	// NotVisited are the codes of the assigned grids no visit of the
	// window was of. To a scoped caller Grids and NotVisited hold only the
	// grids of its subtree.
	NotVisited []string `json:"grids_not_visited"`
	// OnSiteReports counts the reports the leader filed or moved to
	// resolved or closed during the window's visits (OnSiteWindow).
	OnSiteReports int `json:"on_site_reports"`
}

// LeaderStats are the leaders' figures over [From, To).
type LeaderStats struct {
	From time.Time   `json:"from"`
	To   time.Time   `json:"to"`
	Rows []LeaderRow `json:"rows"`
}

// OnSiteWindow is how long after a visit's check-in the reports the leader
// files, resolves or closes count as on-site work of that visit.
const OnSiteWindow = 2 * time.Hour

// RequiredVisits prorates perMonth visits over [from, to): each calendar
// month (in loc) the window overlaps asks for perMonth times the share of
// the month it covers, so a window of exactly one month asks for perMonth
// and one of half of a 30-day month for half of it. Rounded to 2 decimals.
func RequiredVisits(perMonth int, from, to time.Time, loc *time.Location) float64 {
	if !to.After(from) || perMonth == 0 {
		return 0
	}
	total := 0.0
	f := from.In(loc)
	start := time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, loc)
	for start.Before(to) {
		end := start.AddDate(0, 1, 0)
		lo, hi := maxTime(start, from), minTime(end, to)
		if hi.After(lo) {
			total += float64(perMonth) * hi.Sub(lo).Seconds() / end.Sub(start).Seconds()
		}
		start = end
	}
	return math.Round(total*100) / 100
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// LeaderService keeps leaders' grids and check-ins and counts their
// figures. The caller travels in the context.
type LeaderService interface {
	// PutLeaderAssignments replaces an account's grids and visits a month
	// (no grids: the account is a leader no more). Returns ENOTFOUND for an
	// unknown account, EINVALID for bad fields or a grid that is not a
	// current grid.
	PutLeaderAssignments(ctx context.Context, a *LeaderAssignments) error
	// LeaderAssignments returns an account's grids; to a scoped caller
	// only those of its subtree, to the leader itself all of them. Returns
	// one and the same ENOTFOUND for an unknown account, one that is not a
	// leader, and (to a scoped caller) one with no grid in the caller's
	// area, so that an answer tells nothing of accounts one may not see.
	LeaderAssignments(ctx context.Context, username string) (*LeaderAssignments, error)
	// CheckIn records a check-in of the signed-in account in the context
	// and fills in its answer; created is false when c.ClientID names a
	// check-in stored before, which c then holds. Returns EFORBIDDEN for a
	// caller that is not a signed-in leader or a Person that is not the
	// caller, EINVALID for bad fields.
	CheckIn(ctx context.Context, c *CheckIn) (created bool, err error)
	// NoteOnSiteWork links report id to the caller's visits whose window
	// (OnSiteWindow from the check-in) holds now and whose grid the report
	// lies in, when action is one that counts as on-site work (filing,
	// resolving, closing). It does nothing for callers who are not leaders.
	NoteOnSiteWork(ctx context.Context, reportID int64, action string) error
	// LeaderStats counts every leader's figures over [from, to) (of those
	// with a grid in layer, when layer is not ""); a scoped caller sees the
	// leaders with a grid in its scope. Returns ENOTFOUND for an unknown
	// layer, EINVALID for an empty window.
	LeaderStats(ctx context.Context, layer string, from, to time.Time) (*LeaderStats, error)
}
