package postgres

import (
	"context"

	"github.com/gridmap/gridmap"
)

// categorySubtreeSQL selects a category and every category under it through
// parent_code. UNION (not UNION ALL) ends the walk on a cycle of parents.
const categorySubtreeSQL = `WITH RECURSIVE sub(code) AS (
	SELECT code FROM categories WHERE code = $1
	UNION
	SELECT c.code FROM categories c JOIN sub ON c.parent_code = sub.code
) SELECT array_agg(code ORDER BY code) FROM sub`

// categorySubtree resolves a category filter to the codes it selects: the
// category and its descendants, nil for no filter (""). Report queries
// compare the category exactly with these codes (category = ANY), so
// neither "1" selects "10" nor does "_" match any character. Returns
// EINVALID for a category that does not exist.
func (db *DB) categorySubtree(ctx context.Context, code string) ([]string, error) {
	if code == "" {
		return nil, nil
	}
	var codes []string
	if err := db.Pool.QueryRow(ctx, categorySubtreeSQL, code).Scan(&codes); err != nil {
		return nil, translate(err, "category "+code)
	}
	if len(codes) == 0 {
		return nil, gridmap.Errorf(gridmap.EINVALID, "category %q does not exist; see GET /v1/categories for the category codes", code)
	}
	return codes, nil
}
