package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/jackc/pgx/v5"
	"github.com/paulmach/orb/encoding/wkb"
)

// GridStore implements gridmap.GridService and gridmap.Importer.
type GridStore struct{ db *DB }

// NewGridStore returns a GridStore over db.
func NewGridStore(db *DB) *GridStore { return &GridStore{db: db} }

var (
	_ gridmap.GridService = (*GridStore)(nil)
	_ gridmap.Importer    = (*GridStore)(nil)
)

// Geometry travels as WKB both ways, so coordinates come back bit for bit.
const gridColumns = `layer_id, code, name, level, coalesce(parent_code, ''), version, valid_from, valid_to,
	author, reason, attributes, ST_AsBinary(geom)`

func scanGrid(row pgx.Row) (*gridmap.Grid, error) {
	var g gridmap.Grid
	var attrs, geom []byte
	if err := row.Scan(&g.Layer, &g.Code, &g.Name, &g.Level, &g.Parent, &g.Version, &g.ValidFrom, &g.ValidTo,
		&g.Author, &g.Reason, &attrs, &geom); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(attrs, &g.Attributes); err != nil {
		return nil, fmt.Errorf("grid %s attributes: %w", g.Code, err)
	}
	o, err := wkb.Unmarshal(geom)
	if err != nil {
		return nil, fmt.Errorf("grid %s geometry: %w", g.Code, err)
	}
	if g.Geometry, err = geo.Polygonal(o); err != nil {
		return nil, fmt.Errorf("grid %s geometry: %w", g.Code, err)
	}
	return &g, nil
}

// Grid returns the current version of a grid with its people.
// Returns ENOTFOUND for an unknown layer or code.
func (s *GridStore) Grid(ctx context.Context, layer, code string) (*gridmap.Grid, error) {
	g, err := scanGrid(s.db.Pool.QueryRow(ctx, `SELECT `+gridColumns+` FROM grid_versions
		WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL`, layer, code))
	if errors.Is(err, pgx.ErrNoRows) {
		if err := s.checkLayer(ctx, layer); err != nil {
			return nil, err
		}
		return nil, gridmap.Errorf(gridmap.ENOTFOUND, "grid %q does not exist in layer %s", code, layer)
	} else if err != nil {
		return nil, translate(err, "reading grid")
	}
	if g.People, err = s.people(ctx, layer, code); err != nil {
		return nil, err
	}
	return g, nil
}

// Below returns the codes of the current grids below grid code of layer;
// see gridmap.GridService.
func (s *GridStore) Below(ctx context.Context, layer, code string) ([]string, error) {
	if _, err := s.Grid(ctx, layer, code); err != nil {
		return nil, err
	}
	rows, err := s.db.Pool.Query(ctx, `WITH `+subtreeSQL("$1", "$2")+` SELECT code FROM sub WHERE code <> $2 ORDER BY code`, layer, code)
	if err != nil {
		return nil, translate(err, "grids below "+code)
	}
	codes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return codes, translate(err, "grids below "+code)
}

func (s *GridStore) people(ctx context.Context, layer, code string) ([]gridmap.Person, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT role, name, phone, department FROM grid_people
		WHERE layer_id = $1 AND grid_code = $2 ORDER BY position, id`, layer, code)
	if err != nil {
		return nil, translate(err, "reading people")
	}
	people, err := pgx.CollectRows(rows, pgx.RowToStructByPos[gridmap.Person])
	if err != nil {
		return nil, translate(err, "reading people")
	}
	return people, nil
}

func (s *GridStore) checkLayer(ctx context.Context, layer string) error {
	var exists bool
	if err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM layers WHERE id = $1)`, layer).Scan(&exists); err != nil {
		return translate(err, "reading layer")
	}
	if !exists {
		return gridmap.Errorf(gridmap.ENOTFOUND, "layer %q does not exist", layer)
	}
	return nil
}

// MaxPageSize is the most grids one page returns.
const MaxPageSize = 1000

// FindGrids returns a page of current grids ordered by code and the cursor of
// the next page ("" when there is none). Returns ENOTFOUND for an unknown
// layer, EINVALID for a limit out of range.
func (s *GridStore) FindGrids(ctx context.Context, f gridmap.GridFilter) ([]*gridmap.Grid, string, error) {
	if f.Limit <= 0 || f.Limit > MaxPageSize {
		return nil, "", gridmap.Errorf(gridmap.EINVALID, "limit must be between 1 and %d", MaxPageSize)
	}
	if err := s.checkLayer(ctx, f.Layer); err != nil {
		return nil, "", err
	}
	where := []string{"valid_to IS NULL", "layer_id = $1"}
	args := []any{f.Layer}
	// add appends a condition whose ? placeholders take vals, in order.
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.Level != "" {
		add("level = ?", f.Level)
	}
	if f.Parent != "" {
		add("parent_code = ?", f.Parent)
	}
	if f.Cursor != "" {
		add("code > ?", f.Cursor)
	}
	if b := f.BBox; b != nil {
		add("ST_Intersects(geom, ST_MakeEnvelope(?, ?, ?, ?, 4326))", b.Min[0], b.Min[1], b.Max[0], b.Max[1])
	}
	args = append(args, f.Limit+1)
	sql := fmt.Sprintf(`SELECT %s FROM grid_versions WHERE %s ORDER BY code LIMIT $%d`,
		gridColumns, strings.Join(where, " AND "), len(args))
	rows, err := s.db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", translate(err, "listing grids")
	}
	grids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*gridmap.Grid, error) { return scanGrid(r) })
	if err != nil {
		return nil, "", translate(err, "listing grids")
	}
	next := ""
	if len(grids) > f.Limit {
		grids = grids[:f.Limit]
		next = grids[len(grids)-1].Code
	}
	return grids, next, nil
}

// SetPeople replaces the people responsible for a grid.
// Returns ENOTFOUND for an unknown grid, EINVALID for a person without role or name.
func (s *GridStore) SetPeople(ctx context.Context, layer, code string, people []gridmap.Person) error {
	if err := checkPeople(code, people); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// The layer's row first, as every writer of people takes it: an
		// import or a publish holds it from its start and writes people
		// at its end, where the trigger on grid_people takes the layer's
		// people version (migration 00034). Taken after the people, it
		// closed a cycle with them.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM layers WHERE id = $1 FOR KEY SHARE`, layer); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM grid_versions WHERE layer_id = $1 AND code = $2 AND valid_to IS NULL)`,
			layer, code).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return gridmap.Errorf(gridmap.ENOTFOUND, "grid %q does not exist in layer %s", code, layer)
		}
		if err := checkGridInScope(ctx, tx, layer, code); err != nil {
			return err
		}
		if err := replacePeople(ctx, tx, layer, []string{code}, [][]gridmap.Person{people}); err != nil {
			return err
		}
		var version int64
		if err := tx.QueryRow(ctx, `SELECT data_version FROM layers WHERE id = $1`, layer).Scan(&version); err != nil {
			return err
		}
		return notifyChange(ctx, tx, gridmap.Change{Layer: layer, Kind: gridmap.ChangePeople, DataVersion: version, Codes: []string{code}})
	})
	return translate(err, "setting people")
}

func checkPeople(code string, people []gridmap.Person) error {
	for i, p := range people {
		if strings.TrimSpace(p.Role) == "" || strings.TrimSpace(p.Name) == "" {
			return gridmap.Errorf(gridmap.EINVALID, "person %d of grid %s needs a role and a name", i, code)
		}
	}
	return nil
}

// replacePeople sets the people of each code (people[i] for codes[i]).
func replacePeople(ctx context.Context, tx pgx.Tx, layer string, codes []string, people [][]gridmap.Person) error {
	if _, err := tx.Exec(ctx, `DELETE FROM grid_people WHERE layer_id = $1 AND grid_code = ANY($2)`, layer, codes); err != nil {
		return err
	}
	var rows [][]any
	for i, code := range codes {
		for pos, p := range people[i] {
			rows = append(rows, []any{layer, code, pos, p.Role, p.Name, p.Phone, p.Department})
		}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"grid_people"},
		[]string{"layer_id", "grid_code", "position", "role", "name", "phone", "department"}, pgx.CopyFromRows(rows))
	return err
}
