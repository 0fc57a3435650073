package gridmap

import (
	"strings"
	"testing"
	"time"
)

func TestFinestLevelOfTier(t *testing.T) {
	demo := &Layer{Levels: []string{"district", "street", "community", "grid", "microgrid"}}
	own := &Layer{Levels: []string{"county", "town", "village"}, Tiers: map[string]string{"county": TierDistrict, "town": TierStreet, "village": TierStreet}}
	for _, tc := range []struct {
		l          *Layer
		tier, want string
	}{
		{demo, TierGrid, "microgrid"}, {demo, TierStreet, "community"}, {demo, TierDistrict, "district"},
		{own, TierStreet, "village"}, {own, TierGrid, ""},
	} {
		if got := tc.l.FinestLevelOfTier(tc.tier); got != tc.want {
			t.Errorf("FinestLevelOfTier(%v, %s) = %q, want %q", tc.l.Levels, tc.tier, got, tc.want)
		}
	}
}

func TestMeetingCheck(t *testing.T) {
	good := func() Meeting {
		return Meeting{Layer: "l", Street: "S1", HeldAt: time.Now().Add(-time.Hour), Title: "联席会议",
			Attendees: []string{"街道党工委"}, Items: []MeetingItem{{Report: 1, Decision: "会商"}, {Report: 2, Escalate: true}}}
	}
	for _, tc := range []struct {
		name   string
		change func(m *Meeting)
		says   string
	}{
		{"valid", func(*Meeting) {}, ""},
		{"no street", func(m *Meeting) { m.Street = "" }, "street is required"},
		{"not held yet", func(m *Meeting) { m.HeldAt = time.Now().Add(48 * time.Hour) }, "future"},
		{"no time", func(m *Meeting) { m.HeldAt = time.Time{} }, "held_at is required"},
		{"no items", func(m *Meeting) { m.Items = nil }, "items is required"},
		{"a report twice", func(m *Meeting) { m.Items[1].Report = 1 }, "twice"},
		{"no report id", func(m *Meeting) { m.Items[0].Report = 0 }, "items[0].report"},
		{"blank attendee", func(m *Meeting) { m.Attendees = append(m.Attendees, " ") }, "attendees[1]"},
		{"NUL in a decision", func(m *Meeting) { m.Items[0].Decision = "a\x00" }, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.change(&m)
			err := m.Check()
			if tc.says == "" && err != nil || tc.says != "" && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("Check: %v, want %q", err, tc.says)
			}
		})
	}
}
