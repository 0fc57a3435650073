package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// PartyStore implements gridmap.PartyService: grids' party organisations
// here, streets' joint meetings in party_meeting.go.
type PartyStore struct {
	db *DB
	tz *time.Location // the deployment's, for the calendar escalations count on
}

// NewPartyStore returns a PartyStore over db; escalations decided by joint
// meetings count their report-in deadlines in tz.
func NewPartyStore(db *DB, tz *time.Location) *PartyStore { return &PartyStore{db: db, tz: tz} }

var _ gridmap.PartyService = (*PartyStore)(nil)

// layerIn reads a layer through q, without its counts. Returns ENOTFOUND.
func layerIn(ctx context.Context, q querier, id string) (*gridmap.Layer, error) {
	l, err := scanLayer(q.QueryRow(ctx, `SELECT `+layerColumns+` FROM layers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", id)
	}
	return l, err
}

// comprehensiveLayerIn reads a layer through q and returns EINVALID when it
// is not a comprehensive one: party organisations and joint meetings
// belong to the comprehensive grids.
func comprehensiveLayerIn(ctx context.Context, q querier, id string) (*gridmap.Layer, error) {
	l, err := layerIn(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if l.Kind != gridmap.KindComprehensive {
		return nil, gridmap.Errorf(gridmap.EINVALID, "layer %s is %s; party organisations and joint meetings belong to a comprehensive layer's grids", id, l.Kind)
	}
	return l, nil
}

// gridInScope reads the chain of a current grid through q and checks it
// lies in the caller's scope. Returns ENOTFOUND, EFORBIDDEN.
func gridInScope(ctx context.Context, q querier, layer, code string) ([]gridmap.GridRef, error) {
	chain, err := chainIn(ctx, q, layer, code)
	if err != nil {
		return nil, err
	}
	if s := scopeOf(ctx); !s.Holds(layer, chain) {
		return nil, gridmap.Errorf(gridmap.EFORBIDDEN, "grid %s of layer %s lies outside %s's area (%s %s)",
			code, layer, gridmap.CallerFrom(ctx).Name, s.Layer, s.Code)
	}
	return chain, nil
}

// streetOf returns the street of the last grid of chain: street itself
// when it names a street-tier grid above it, the nearest such grid when
// street is "" (and "" when there is none). Returns EINVALID for a street
// sent that is not one of them.
func streetOf(l *gridmap.Layer, chain []gridmap.GridRef, street string) (string, error) {
	var streets []string // nearest last
	for _, g := range chain[:len(chain)-1] {
		if l.TierOfLevel(g.Level) == gridmap.TierStreet {
			streets = append(streets, g.Code)
		}
	}
	code := chain[len(chain)-1].Code
	switch {
	case street == "" && len(streets) > 0:
		return streets[len(streets)-1], nil
	case street == "" || slices.Contains(streets, street):
		return street, nil
	case len(streets) == 0:
		return "", gridmap.Errorf(gridmap.EINVALID, "grid %s has no street-tier grid above it; leave street out", code)
	}
	return "", gridmap.Errorf(gridmap.EINVALID, "street %q is not a street-tier grid above %s; it must be one of %s (or left out for %s)",
		street, code, strings.Join(streets, ", "), streets[len(streets)-1])
}

// partyColumns are a party organisation's columns (alias p), NULL
// throughout for a grid without one.
const partyColumns = `p.kind, p.name, p.secretary, p.members, coalesce(p.street_code, ''), p.version, p.updated_at, p.updated_by`

// scanParty scans partyColumns after leading; nil for NULLs.
func scanParty(row pgx.Row, leading ...any) (*gridmap.PartyOrg, error) {
	var kind, name, street, by *string
	var secretary, members []byte
	var version *int
	var at *time.Time
	if err := row.Scan(append(leading, &kind, &name, &secretary, &members, &street, &version, &at, &by)...); err != nil {
		return nil, err
	}
	if kind == nil {
		return nil, nil
	}
	p := &gridmap.PartyOrg{Kind: *kind, Name: *name, Street: *street, Version: *version, UpdatedAt: *at, UpdatedBy: *by}
	if err := json.Unmarshal(secretary, &p.Secretary); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(members, &p.Members); err != nil {
		return nil, err
	}
	return p, nil
}

// Writes of a party organisation. Each is one statement, so that two
// concurrent writes cannot both pass a version check: with If-Match "0"
// the insert does nothing when a row exists (ON CONFLICT DO NOTHING), with
// a version the update matches only that version; no row back is a stale
// If-Match. Without If-Match the upsert creates (version 1) or replaces.
const (
	partyInsertSQL = `INSERT INTO party_orgs (layer_id, grid_code, kind, name, secretary, members, street_code, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)
		ON CONFLICT (layer_id, grid_code) DO NOTHING
		RETURNING version, updated_at`
	partyUpdateSQL = `UPDATE party_orgs SET kind = $3, name = $4, secretary = $5, members = $6, street_code = nullif($7, ''),
		  updated_by = $8, updated_at = now(), version = version + 1
		WHERE layer_id = $1 AND grid_code = $2 AND version = $9
		RETURNING version, updated_at`
	partyUpsertSQL = `INSERT INTO party_orgs (layer_id, grid_code, kind, name, secretary, members, street_code, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8)
		ON CONFLICT (layer_id, grid_code) DO UPDATE SET kind = $3, name = $4, secretary = $5, members = $6, street_code = nullif($7, ''),
		  updated_by = $8, updated_at = now(), version = party_orgs.version + 1
		RETURNING version, updated_at`
)

// PutParty creates or replaces a grid's party organisation in one
// transaction; see gridmap.PartyService.
func (s *PartyStore) PutParty(ctx context.Context, p *gridmap.PartyOrg, ifMatch *int) (created bool, err error) {
	if err := p.Check(); err != nil {
		return false, err
	}
	actor := gridmap.CallerFrom(ctx).Actor()
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		l, err := comprehensiveLayerIn(ctx, tx, p.Layer)
		if err != nil {
			return err
		}
		chain, err := gridInScope(ctx, tx, p.Layer, p.Grid)
		if err != nil {
			return err
		}
		if p.Street, err = streetOf(l, chain, p.Street); err != nil {
			return err
		}
		secretary, _ := json.Marshal(p.Secretary)
		members, _ := json.Marshal(p.Members)
		args := []any{p.Layer, p.Grid, p.Kind, p.Name, secretary, members, p.Street, actor}
		switch {
		case ifMatch == nil:
			err = tx.QueryRow(ctx, partyUpsertSQL, args...).Scan(&p.Version, &p.UpdatedAt)
			created = p.Version == 1 // an update raises the version past 1
			return err
		case *ifMatch == 0:
			err = tx.QueryRow(ctx, partyInsertSQL, args...).Scan(&p.Version, &p.UpdatedAt)
			created = err == nil
		default:
			err = tx.QueryRow(ctx, partyUpdateSQL, append(args, *ifMatch)...).Scan(&p.Version, &p.UpdatedAt)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return stalePartyVersion(ctx, tx, p.Layer, p.Grid, *ifMatch)
		}
		return err
	})
	p.UpdatedBy = actor
	return created, translate(err, "storing party organisation")
}

// stalePartyVersion returns EPRECONDITION naming the version a grid's
// party organisation is at now (0: none), read through q.
func stalePartyVersion(ctx context.Context, q querier, layer, code string, ifMatch int) error {
	var version int
	err := q.QueryRow(ctx, `SELECT version FROM party_orgs WHERE layer_id = $1 AND grid_code = $2`, layer, code).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return gridmap.Errorf(gridmap.EPRECONDITION, "the party organisation of grid %s is at version %d, not %d; read it again", code, version, ifMatch)
}

// Party returns a grid's party organisation; see gridmap.PartyService.
func (s *PartyStore) Party(ctx context.Context, layer, code string) (*gridmap.PartyOrg, error) {
	if _, err := gridInScope(ctx, s.db.Pool, layer, code); err != nil {
		return nil, translate(err, "reading party organisation")
	}
	p, err := scanParty(s.db.Pool.QueryRow(ctx, `SELECT `+partyColumns+` FROM party_orgs p WHERE p.layer_id = $1 AND p.grid_code = $2`, layer, code))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %s of layer %s has no party organisation (PUT one)", code, layer)
	} else if err != nil {
		return nil, translate(err, "reading party organisation")
	}
	p.Layer, p.Grid = layer, code
	return p, nil
}

// DeleteParty removes a grid's party organisation; see
// gridmap.PartyService.
func (s *PartyStore) DeleteParty(ctx context.Context, layer, code string, ifMatch *int) error {
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := gridInScope(ctx, tx, layer, code); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM party_orgs WHERE layer_id = $1 AND grid_code = $2 FOR UPDATE`, layer, code).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return gridmap.Errorf(gridmap.ENOTFOUND, "grid %s of layer %s has no party organisation", code, layer)
		} else if err != nil {
			return err
		}
		if ifMatch != nil && *ifMatch != version {
			return gridmap.Errorf(gridmap.EPRECONDITION, "the party organisation of grid %s is at version %d, not %d; read it again", code, version, *ifMatch)
		}
		_, err = tx.Exec(ctx, `DELETE FROM party_orgs WHERE layer_id = $1 AND grid_code = $2`, layer, code)
		return err
	})
	return translate(err, "deleting party organisation")
}

// subtreeSQL is a CTE sub of the codes of the current grids in the subtree
// of grid $B of layer $A (placeholders named by the caller); empty when
// $B is NULL.
func subtreeSQL(layer, code string) string {
	return `RECURSIVE sub (code) AS (
	  SELECT code FROM grids WHERE layer_id = ` + layer + ` AND code = ` + code + `
	  UNION
	  SELECT g.code FROM grids g JOIN sub ON g.layer_id = ` + layer + ` AND g.parent_code = sub.code)`
}

// partyCoverageSQL lists the current grids of layer $1 at level $2 with
// their organisations, those in the subtree of grid $3 only when $3 is
// not NULL.
var partyCoverageSQL = `WITH ` + subtreeSQL("$1", "$3") + `
	SELECT g.code, g.name, ` + partyColumns + `
	FROM grids g LEFT JOIN party_orgs p ON p.layer_id = g.layer_id AND p.grid_code = g.code
	WHERE g.layer_id = $1 AND g.level = $2 AND ($3::text IS NULL OR g.code IN (SELECT code FROM sub))
	ORDER BY g.code`

// PartyCoverage lists a level's grids with their organisations; see
// gridmap.PartyService.
func (s *PartyStore) PartyCoverage(ctx context.Context, layer, level string, missingOnly bool) (*gridmap.PartyCoverage, error) {
	l, err := comprehensiveLayerIn(ctx, s.db.Pool, layer)
	if err != nil {
		return nil, translate(err, "party coverage")
	}
	if level == "" {
		if level = l.FinestLevelOfTier(gridmap.TierGrid); level == "" {
			level = l.Levels[len(l.Levels)-1]
		}
	} else if l.LevelIndex(level) < 0 {
		return nil, gridmap.Errorf(gridmap.EINVALID, "level %q is not a level of layer %s; it has %s", level, layer, strings.Join(l.Levels, ", "))
	}
	cov := &gridmap.PartyCoverage{Layer: layer, Level: level, Rows: []gridmap.PartyCoverageRow{}}
	scope := scopeOf(ctx)
	if scope != nil && scope.Layer != layer {
		return cov, nil // nothing of this layer is in the caller's area
	}
	var scopeCode *string
	if scope != nil {
		scopeCode = &scope.Code
	}
	rows, err := s.db.Pool.Query(ctx, partyCoverageSQL, layer, level, scopeCode)
	if err != nil {
		return nil, translate(err, "party coverage")
	}
	defer rows.Close()
	for rows.Next() {
		var r gridmap.PartyCoverageRow
		if r.Party, err = scanParty(rows, &r.Code, &r.Name); err != nil {
			return nil, translate(err, "party coverage")
		}
		cov.Grids++
		if r.Party != nil {
			r.Party.Layer, r.Party.Grid = layer, r.Code
			cov.WithParty++
		}
		if !missingOnly || r.Party == nil {
			cov.Rows = append(cov.Rows, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "party coverage")
	}
	if cov.Grids > 0 {
		c := float64(cov.WithParty) / float64(cov.Grids)
		cov.Coverage = &c
	}
	return cov, nil
}
