package gridmap

import (
	"strings"
	"testing"
	"time"
)

func TestRequiredVisits(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	d := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		perMonth int
		from, to string
		want     float64
	}{
		{"a whole month", 8, "2026-02-01 00:00", "2026-03-01 00:00", 8},
		{"half of a 30-day month", 8, "2026-11-01 00:00", "2026-11-16 00:00", 4},
		{"across two months", 6, "2026-11-16 00:00", "2026-12-16 00:00", 6*15.0/30 + 6*15.0/31},
		{"a quarter", 2, "2026-01-01 00:00", "2026-04-01 00:00", 6},
		{"one day of February", 28, "2026-02-10 00:00", "2026-02-11 00:00", 1},
		{"an empty window", 8, "2026-02-10 00:00", "2026-02-10 00:00", 0},
		{"none asked", 0, "2026-02-01 00:00", "2026-03-01 00:00", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := float64(int(tc.want*100+0.5)) / 100
			if got := RequiredVisits(tc.perMonth, d(tc.from), d(tc.to), sh); got != want {
				t.Errorf("RequiredVisits(%d, %s, %s) = %v, want %v", tc.perMonth, tc.from, tc.to, got, want)
			}
		})
	}
}

func TestCheckInCheck(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		c    CheckIn
		says string // "" for valid
	}{
		{"valid, time filled in", CheckIn{Lon: 116.4, Lat: 39.9, PhotoURL: "https://p.example/a.jpg"}, ""},
		{"http photo", CheckIn{Lon: 116.4, Lat: 39.9, PhotoURL: "http://p.example/a.jpg"}, ""},
		{"ftp photo", CheckIn{Lon: 116.4, Lat: 39.9, PhotoURL: "ftp://p.example/a.jpg"}, "photo_url"},
		{"photo without host", CheckIn{Lon: 116.4, Lat: 39.9, PhotoURL: "https:///a.jpg"}, "photo_url"},
		{"latitude out of range", CheckIn{Lon: 116.4, Lat: 95}, "lat 95"},
		{"future", CheckIn{Lon: 116.4, Lat: 39.9, At: now.Add(time.Hour)}, "future"},
		{"too old", CheckIn{Lon: 116.4, Lat: 39.9, At: now.Add(-8 * 24 * time.Hour)}, "within a week"},
		{"huge accuracy", CheckIn{Lon: 116.4, Lat: 39.9, AccuracyM: 6000}, "accuracy_m"},
		{"NUL in note", CheckIn{Lon: 116.4, Lat: 39.9, Note: "a\x00b"}, "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Check(now)
			if tc.says == "" && (err != nil || tc.c.At.IsZero()) || tc.says != "" && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("Check: %v, want %q", err, tc.says)
			}
		})
	}
}

func TestPartyOrgCheck(t *testing.T) {
	good := func() PartyOrg {
		return PartyOrg{Kind: PartyGroup, Name: "第一党小组", Secretary: PartySecretary{Name: "王", Phone: "+86 138-0000-0000"},
			Members: []PartyMember{{Name: "李", Role: "委员", Phone: "(010) 1234"}}}
	}
	for _, tc := range []struct {
		name   string
		change func(p *PartyOrg)
		says   string
	}{
		{"valid", func(*PartyOrg) {}, ""},
		{"no members", func(p *PartyOrg) { p.Members = nil }, ""},
		{"bad kind", func(p *PartyOrg) { p.Kind = "cell" }, "kind"},
		{"blank name", func(p *PartyOrg) { p.Name = "  " }, "name is required"},
		{"no secretary", func(p *PartyOrg) { p.Secretary.Name = "" }, "secretary.name"},
		{"letters in a phone", func(p *PartyOrg) { p.Secretary.Phone = "ask the office" }, "secretary.phone"},
		{"unnamed member", func(p *PartyOrg) { p.Members = append(p.Members, PartyMember{Role: "委员"}) }, "members[1].name"},
		{"long name", func(p *PartyOrg) { p.Name = strings.Repeat("党", MaxPartyText+1) }, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.change(&p)
			err := p.Check()
			if tc.says == "" && err != nil || tc.says != "" && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.says)) {
				t.Errorf("Check: %v, want %q", err, tc.says)
			}
		})
	}
}
