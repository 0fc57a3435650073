package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
	"github.com/paulmach/orb/project"
)

// ReportStore takes reports in, assigns them with the lookup index and the
// dispatch policy, and follows them through the workflow. Every report is
// committed synchronously before it is acknowledged.
type ReportStore struct {
	db  *DB
	loc *Locator
	tz  *time.Location
}

// NewReportStore returns a ReportStore; deadlines are counted in tz.
func NewReportStore(db *DB, loc *Locator, tz *time.Location) *ReportStore {
	return &ReportStore{db: db, loc: loc, tz: tz}
}

// maxFuture is how far in the future reported_at may be (clock skew).
const maxFuture = 5 * time.Minute

// CreateReport validates, assigns and stores a report with its first event.
// Returns EUNPROCESSABLE for a report that breaks a rule (saying which),
// ECONFLICT for an external_id already used with other content; an
// identical retry returns the stored report with created false.
func (s *ReportStore) CreateReport(ctx context.Context, r *gridmap.Report) (bool, error) {
	if err := s.check(r); err != nil {
		return false, err
	}
	hash := contentHash(r)
	if existing, err := s.byExternalID(ctx, r.ExternalID, hash); existing != nil || err != nil {
		if existing != nil {
			*r = *existing
		}
		return false, err
	}
	if r.ReportedAt.IsZero() {
		r.ReportedAt = time.Now()
	}
	if c := gridmap.CallerFrom(ctx); c != nil && c.Kind == gridmap.CallerAccount {
		r.FiledBy = c.Name
	}
	if err := s.toWGS84(r); err != nil {
		return false, err
	}
	var at *boundariesAt
	for attempt := 1; ; attempt++ {
		a, used, links, err := s.assign(ctx, r, at)
		if err != nil {
			return false, err
		}
		if !scopeOf(ctx).HoldsLocation(a) {
			return false, gridmap.Errorf(gridmap.EFORBIDDEN, "the report's location lies outside %s's area (%s %s); report it to the grid that owns it",
				gridmap.CallerFrom(ctx).Name, scopeOf(ctx).Layer, scopeOf(ctx).Code)
		}
		stored, err := s.insert(ctx, r, a, hash, used, links)
		if isSQLState(err, "23505") {
			// A concurrent request with the same external_id won the race.
			existing, err := s.byExternalID(ctx, r.ExternalID, hash)
			if existing != nil {
				*r = *existing
			}
			return false, err
		}
		if err != nil || stored {
			return stored, translate(err, "report "+r.ExternalID)
		}
		// Boundaries were committed after the lookup index the assignment
		// came from: wait for the index to hold them, else assign from
		// PostGIS as of now.
		if attempt == maxAssignAttempts {
			return false, gridmap.Errorf(gridmap.EUNAVAILABLE, "the boundaries kept changing while the report was assigned; retry it (the same external_id is safe)")
		}
		if at, err = s.layerVersions(ctx); err != nil {
			return false, err
		}
		wctx, cancel := context.WithTimeout(ctx, indexWait)
		err = s.loc.WaitFor(wctx, at.versions)
		cancel()
		if err == nil {
			at = nil
		} else if ctx.Err() != nil {
			return false, translate(ctx.Err(), "report "+r.ExternalID)
		}
	}
}

// maxAssignAttempts bounds how often intake assigns a report again when
// boundaries change under it; indexWait is how long it waits for the
// lookup index to catch up before assigning from PostGIS instead.
const (
	maxAssignAttempts = 5
	indexWait         = 2 * time.Second
)

// intakeSQL stores a new report with its first event (eventSQL), in one
// statement, so one round trip and one durable commit, provided the layers
// are those the assignment answered from ($30) at the data versions it
// used ($31), and no other layer exists. The layers' rows are share-locked,
// so a boundary change committing meanwhile (it locks its layer's row
// first, and updates its version) either waits for this report and
// re-routes it, or is seen here and the statement stores nothing.
const intakeSQL = `WITH v AS (
	  SELECT l.id FROM layers l JOIN unnest($30::text[], $31::bigint[]) u (id, version) ON l.id = u.id AND l.data_version = u.version
	  ORDER BY l.id FOR SHARE OF l),
	r AS (
	  INSERT INTO reports (external_id, content_hash, category, description, location, original, crs,
	    accuracy_m, source, urgent, reported_at, status, layer_id, primary_code, tier, due_at, assignment, deadline_at, scope_codes, filed_by)
	  SELECT $13, $14, $15, $16, ST_SetSRID(ST_GeomFromGeoJSON($17), 4326), $18, $19, $20, $21, $22, $23, $3, $24, $25, $26, $27, $28, $29, $32,
	    nullif($33, '')
	  WHERE (SELECT count(*) FROM v) = cardinality($30::text[]) AND NOT EXISTS (SELECT 1 FROM layers WHERE id <> ALL($30::text[]))
	  RETURNING id, received_at AS at, ` + reportBoxSQL + ` AS box)` + eventSQL

// insert stores r with assignment a and its first event. stored is false
// when the layers are no longer those in used, at those versions.
func (s *ReportStore) insert(ctx context.Context, r *gridmap.Report, a *gridmap.Assignment, hash []byte, used map[string]int64, links bool) (stored bool, err error) {
	r.Assignment, r.Status = a, gridmap.StatusReported
	out := dispatch.Outcome{State: dispatch.State{Status: r.Status, Assignment: *a}}
	out.DeadlineAt = dispatch.NextDeadline(out.State)
	assignment, _ := json.Marshal(a)
	ev := &gridmap.ReportEvent{Action: dispatch.ActionReport, To: r.Status, Actor: r.Source, Note: a.Explanation,
		Departments: []string{}, Data: assignment}
	var original []byte
	if r.OriginalLocation != nil {
		original, _ = json.Marshal(r.OriginalLocation)
	}
	loc, _ := json.Marshal(r.Location)
	var primary *string
	if a.Primary != nil {
		primary = &a.Primary.Code
	}
	layers, versions := make([]string, 0, len(used)), make([]int64, 0, len(used))
	for l, v := range used {
		layers, versions = append(layers, l), append(versions, v)
	}
	args := append(eventArgs(ev, &out, eventAbout{r.ExternalID, r.Category}),
		r.ExternalID, hash, r.Category, r.Description, string(loc), original, r.CRS, r.AccuracyM, r.Source, r.Urgent,
		r.ReportedAt, a.Layer, primary, a.Tier, a.DueAt, assignment, out.DeadlineAt, layers, versions, gridmap.ReportScopeCodes(a), r.FiledBy)
	// Stored with its probable-duplicate link (report_duplicates.go).
	err = s.intakeLinked(ctx, r, args, links)
	if isNoMonth(err) {
		// Nothing was stored: the month's partition is made and the report
		// stored in it.
		if err := s.makeCurrentMonth(ctx); err != nil {
			return false, err
		}
		err = s.intakeLinked(ctx, r, args, links)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	r.UpdatedAt = r.ReceivedAt
	return err == nil, err
}

// check validates what a client sent. Returns EUNPROCESSABLE listing every
// problem.
func (s *ReportStore) check(r *gridmap.Report) error {
	var problems []string
	if strings.TrimSpace(r.ExternalID) == "" || len(r.ExternalID) > 200 {
		problems = append(problems, "external_id is required (at most 200 characters): the client's own id, which makes retries safe")
	}
	if r.Category == "" {
		problems = append(problems, "category is required (see GET /v1/categories)")
	}
	if r.Location == nil || r.Location.Geometry() == nil {
		problems = append(problems, "location is required: a GeoJSON Point, LineString or Polygon")
	} else {
		switch g := r.Location.Geometry().(type) {
		case orb.Point, orb.LineString, orb.Polygon, orb.MultiLineString, orb.MultiPolygon:
			bad := false
			project.Geometry(orb.Clone(g), func(p orb.Point) orb.Point {
				bad = bad || gridmap.CheckLonLat(p[0], p[1]) != nil
				return p
			})
			if bad {
				problems = append(problems, "location has a coordinate out of range: longitude first, within ±180, latitude within ±90")
			}
			if ls, ok := g.(orb.LineString); ok && len(ls) < 2 {
				problems = append(problems, "a LineString location needs at least two points")
			}
		default:
			problems = append(problems, fmt.Sprintf("location is a %s; use a Point, LineString or Polygon", g.GeoJSONType()))
		}
	}
	if math.IsNaN(r.AccuracyM) || r.AccuracyM < 0 || r.AccuracyM > 10000 {
		problems = append(problems, "accuracy_m must be between 0 and 10000 metres")
	}
	switch r.CRS {
	case "":
		r.CRS = gridmap.CRSWGS84
	case gridmap.CRSWGS84, gridmap.CRSCGCS2000, gridmap.CRSGCJ02, gridmap.CRSBD09:
	default:
		problems = append(problems, fmt.Sprintf("crs %q must be wgs84, cgcs2000, gcj02 or bd09", r.CRS))
	}
	if !r.ReportedAt.IsZero() && r.ReportedAt.After(time.Now().Add(maxFuture)) {
		problems = append(problems, "reported_at is in the future")
	}
	if len(problems) > 0 {
		return gridmap.Errorf(gridmap.EUNPROCESSABLE, "the report was not stored: %s", strings.Join(problems, "; "))
	}
	return nil
}

// contentHash identifies what the client sent, so a retry is recognised:
// reported_at counts only when the client gave it.
func contentHash(r *gridmap.Report) []byte {
	loc, _ := json.Marshal(r.Location)
	var at string
	if !r.ReportedAt.IsZero() {
		at = r.ReportedAt.UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal([]any{r.ExternalID, r.Category, r.Description, json.RawMessage(loc), r.CRS, r.AccuracyM, r.Source, r.Urgent, at})
	h := sha256.Sum256(b)
	return h[:]
}

// byExternalID returns the stored report with that external_id when its
// content matches, ECONFLICT when it does not, nil when there is none.
func (s *ReportStore) byExternalID(ctx context.Context, externalID string, hash []byte) (*gridmap.Report, error) {
	var id int64
	var stored []byte
	err := s.db.Pool.QueryRow(ctx, `SELECT report_id FROM report_keys WHERE external_id = $1`, externalID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, translate(err, "report "+externalID)
	}
	err = s.db.Pool.QueryRow(ctx, onReport(`SELECT content_hash FROM {report} WHERE id = $1`, id), id).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil // deleted since
	} else if noReport(err, id) {
		// The key outlives its report only when the report's month was
		// detached (archived): the external_id stays taken.
		return nil, gridmap.Errorf(gridmap.ECONFLICT, "external_id %q was used for report %d, which is no longer kept here (its month was archived): send the report with another external_id", externalID, id)
	} else if err != nil {
		return nil, translate(err, "report "+externalID)
	}
	if !bytes.Equal(stored, hash) {
		return nil, gridmap.Errorf(gridmap.ECONFLICT, "external_id %q was already used for a report with other content (report %d)", externalID, id)
	}
	return s.Report(ctx, id)
}

// toWGS84 converts the location, keeping what was sent.
func (s *ReportStore) toWGS84(r *gridmap.Report) error {
	if r.CRS == gridmap.CRSWGS84 || r.CRS == gridmap.CRSCGCS2000 {
		return nil
	}
	orig := r.Location.Geometry()
	g := orb.Clone(orig)
	var err error
	g = project.Geometry(g, func(p orb.Point) orb.Point {
		x, y, e := geo.ToWGS84(r.CRS, p[0], p[1])
		if e != nil {
			err = e
		}
		return orb.Point{x, y}
	})
	if err != nil {
		return err
	}
	r.OriginalLocation = geojson.NewGeometry(orig)
	r.Location = geojson.NewGeometry(g)
	return nil
}
