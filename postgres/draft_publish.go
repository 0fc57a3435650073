package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// Publish replaces the layer's published grids by its draft in one
// transaction (see gridmap.DraftService): a new version for each grid the
// draft changes or adds, the end of validity for each grid it no longer has,
// open reports re-routed and the change announced as an import does, and the
// draft removed. The layer row is locked first, so of two publishers (or a
// publisher and a draft editor) one goes after the other: the second finds
// no draft. Returns EUNPROCESSABLE with the problems p.Allow does not accept,
// ECONFLICT when the published layer changed since the draft was started,
// ENOTFOUND without a draft, EFORBIDDEN when a scoped caller's draft reaches
// outside its scope.
func (s *GridStore) Publish(ctx context.Context, layer string, p *gridmap.Publish) (*gridmap.PublishResult, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	res := &gridmap.PublishResult{Layer: layer, Versions: map[string]int{}, Ended: []string{}, Accepted: []gridmap.Problem{}}
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		// As an import: the caller's context bounds it, and the layer's
		// tables may grow a lot within it.
		if _, err := tx.Exec(ctx, wholeLayerSettings); err != nil {
			return err
		}
		l, err := NewLayerStore(s.db).layer(ctx, tx, layer, true)
		if err != nil {
			return err
		}
		if err := requireDraft(ctx, tx, layer); err != nil {
			return err
		}
		var base int64
		if err := tx.QueryRow(ctx, `SELECT base_data_version FROM drafts WHERE layer_id = $1`, layer).Scan(&base); err != nil {
			return err
		}
		if base != l.DataVersion {
			return gridmap.Errorf(gridmap.ECONFLICT, "layer %s changed since its draft was started (data version %d, now %d); publishing would undo those changes: discard the draft and start it again",
				layer, base, l.DataVersion)
		}
		if err := checkDraftInScope(ctx, tx, layer); err != nil {
			return err
		}
		problems, err := draftProblems(ctx, tx, layer)
		if err != nil {
			return err
		}
		if blocking := p.Blocking(problems); len(blocking) > 0 {
			return &gridmap.Error{Code: gridmap.EUNPROCESSABLE, Details: blocking,
				Message: fmt.Sprintf("the draft has %d problems that stop a publish: fix them in the draft, or accept their kinds with allow (%v)", len(blocking), gridmap.PublishableKinds)}
		}
		for _, pr := range problems {
			if slices.Contains(p.Allow, pr.Kind) {
				res.Accepted = append(res.Accepted, pr)
			}
		}
		return publishDraft(ctx, tx, layer, p, res)
	})
	if err != nil {
		return nil, translate(err, "publishing the draft of layer "+layer)
	}
	return res, nil
}

// publishDraft writes the draft of layer as its current grids and removes it.
func publishDraft(ctx context.Context, tx pgx.Tx, layer string, p *gridmap.Publish, res *gridmap.PublishResult) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE publish_work (code text PRIMARY KEY, ended boolean NOT NULL) ON COMMIT DROP`); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO publish_work (code, ended)
		SELECT code, false FROM (`+draftDiffSQL+`) d WHERE NOT d.same
		UNION ALL SELECT code, true FROM (`+endedSQL+`) e`, layer)
	if err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM draft_grids WHERE layer_id = $1`, layer).Scan(&res.Unchanged); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE grid_versions g SET valid_to = now() FROM publish_work w
		WHERE g.layer_id = $1 AND g.valid_to IS NULL AND g.code = w.code`, layer); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `INSERT INTO grid_versions (layer_id, code, version, name, level, parent_code, geom, attributes, valid_from, author, reason)
		SELECT $1, d.code, coalesce((SELECT max(v.version) FROM grid_versions v WHERE v.layer_id = $1 AND v.code = d.code), 0) + 1,
		       d.name, d.level, d.parent_code, d.geom, d.attributes, now(), $2, $3
		FROM draft_grids d JOIN publish_work w ON w.code = d.code AND NOT w.ended
		WHERE d.layer_id = $1
		RETURNING code, version`, layer, p.Author, p.Reason)
	if err != nil {
		return err
	}
	var code string
	var version int
	if _, err := pgx.ForEachRow(rows, []any{&code, &version}, func() error { res.Versions[code] = version; return nil }); err != nil {
		return err
	}
	res.Unchanged -= len(res.Versions)
	rows, err = tx.Query(ctx, `SELECT code FROM publish_work WHERE ended ORDER BY code`)
	if err != nil {
		return err
	}
	if res.Ended, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	if err := publishPeople(ctx, tx, layer); err != nil {
		return err
	}
	changed := tag.RowsAffected() > 0
	if err := tx.QueryRow(ctx, `UPDATE layers SET data_version = data_version + 1, updated_at = now() WHERE id = $1 RETURNING data_version`,
		layer).Scan(&res.DataVersion); err != nil {
		return err
	}
	if changed {
		reroutes, err := findReroutes(ctx, tx, layer,
			`(SELECT code, parent_code, geom FROM grid_versions WHERE layer_id = $1 AND valid_to IS NULL)`,
			`SELECT g.geom AS g FROM grid_versions g JOIN publish_work w ON w.code = g.code
			 WHERE g.layer_id = $1 AND (g.valid_to IS NULL OR g.valid_to = now())`)
		if err != nil {
			return err
		}
		if err := applyReroutes(ctx, tx, layer, reroutes, res.DataVersion-1, res.DataVersion); err != nil {
			return err
		}
		if err := rechain(ctx, tx, layer, nil, reroutes, res.DataVersion); err != nil {
			return err
		}
		res.Rerouted = len(reroutes)
		if _, err := refreshShapes(ctx, tx, layer, nil, nil); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM drafts WHERE layer_id = $1`, layer); err != nil {
		return err
	}
	// As an import: the whole layer may have changed, so the notice names
	// no codes and no box; the lookup index and tiles reload the layer.
	return notifyChange(ctx, tx, gridmap.Change{Layer: layer, Kind: gridmap.ChangeBoundaries, DataVersion: res.DataVersion})
}

// publishPeople replaces the people of every draft grid that carries some.
func publishPeople(ctx context.Context, tx pgx.Tx, layer string) error {
	rows, err := tx.Query(ctx, `SELECT code, people FROM draft_grids WHERE layer_id = $1 AND people IS NOT NULL ORDER BY code`, layer)
	if err != nil {
		return err
	}
	var codes []string
	var people [][]gridmap.Person
	var code string
	var list []gridmap.Person
	if _, err := pgx.ForEachRow(rows, []any{&code, &list}, func() error {
		codes = append(codes, code)
		people = append(people, slices.Clone(list))
		return nil
	}); err != nil || len(codes) == 0 {
		return err
	}
	return replacePeople(ctx, tx, layer, codes, people)
}
