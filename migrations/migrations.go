// Package migrations holds the numbered SQL migrations of the gridmap schema,
// embedded in the binary and applied by goose under an advisory lock.
package migrations

import "embed"

// FS holds every migration, named NNNNN_what.sql.
//
//go:embed *.sql
var FS embed.FS
