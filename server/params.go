package server

import (
	"time"

	"github.com/gridmap/gridmap"
)

// parseTime reads a time parameter (name says which, for the message) in
// RFC 3339. Returns EINVALID with an example of the form.
func parseTime(name, value string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, gridmap.Errorf(gridmap.EINVALID, "%s %q must be an RFC 3339 time such as 2026-01-31T08:00:00+08:00", name, value)
	}
	return t, nil
}
