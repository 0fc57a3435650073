package gridmap

import (
	"testing"
	"time"
)

func TestReportCursorRoundTrip(t *testing.T) {
	due := time.Date(2026, 11, 23, 11, 30, 0, 123456000, time.UTC)
	for _, c := range []*ReportCursor{{Sort: SortArrival, ID: 42}, {Sort: SortDeadline, DueAt: due, ID: 42}} {
		got, err := ParseReportCursor(c.Sort, c.String())
		if err != nil || got.ID != c.ID || !got.DueAt.Equal(c.DueAt) || got.Sort != c.Sort {
			t.Errorf("%s: %q read back as %+v, %v", c.Sort, c.String(), got, err)
		}
	}
	if s := (&ReportCursor{Sort: SortArrival, ID: 42}).String(); s != "42" {
		t.Errorf("an arrival cursor is %q, want the bare id as before", s)
	}
}

func TestParseReportCursorRefuses(t *testing.T) {
	for _, tc := range []struct{ name, sort, cursor string }{
		{"a deadline cursor in arrival order", SortArrival, "d1795433400000000_42"},
		{"an arrival cursor in deadline order", SortDeadline, "42"},
		{"no id", SortDeadline, "d1795433400000000"},
		{"a zero id", SortArrival, "0"},
		{"a negative id", SortDeadline, "d1_-3"},
		{"garbage", SortDeadline, "dx_1"},
		{"empty", SortArrival, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseReportCursor(tc.sort, tc.cursor); ErrorCode(err) != EINVALID {
				t.Errorf("%q: %v, want EINVALID", tc.cursor, err)
			}
		})
	}
}
