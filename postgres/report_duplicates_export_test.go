package postgres

import "github.com/paulmach/orb"

// DuplicateSQL names the duplicate linking statement, for plan checks.
var DuplicateSQL = map[string]string{"link": duplicateLinkSQL}

// DuplicateLockKeys exports duplicateLockKeys.
func DuplicateLockKeys(category string, b orb.Bound) ([]int64, bool) {
	return duplicateLockKeys(category, b)
}
