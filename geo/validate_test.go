package geo

import (
	"math"
	"strings"
	"testing"

	"github.com/paulmach/orb"
)

func TestCheck(t *testing.T) {
	sq := orb.Ring{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}
	tests := []struct {
		name   string
		mp     orb.MultiPolygon
		reason string // substring; "" means valid
		where  *orb.Point
	}{
		{"square is valid", orb.MultiPolygon{{sq}}, "", nil},
		{"bow-tie self-intersects", orb.MultiPolygon{{{{0, 0}, {1, 1}, {1, 0}, {0, 1}, {0, 0}}}}, "Self-intersection", &orb.Point{0.5, 0.5}},
		{"unclosed ring", orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}}, "not closed", nil},
		{"too few points", orb.MultiPolygon{{{{0, 0}, {1, 0}, {0, 0}}}}, "at least 4", nil},
		{"latitude out of range", orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 91}, {0, 0}}}}, "out of range", nil},
		{"not a number", orb.MultiPolygon{{{{0, 0}, {math.NaN(), 0}, {1, 1}, {0, 0}}}}, "not a number", nil},
		{"empty", orb.MultiPolygon{}, "empty", nil},
		{"hole outside shell", orb.MultiPolygon{{sq, {{5, 5}, {6, 5}, {6, 6}, {5, 5}}}}, "Hole", nil},
	}
	c := NewChecker()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv := c.Check(tc.mp)
			if tc.reason == "" {
				if iv != nil {
					t.Fatalf("valid geometry reported invalid: %s", iv.Reason)
				}
				return
			}
			if iv == nil {
				t.Fatalf("invalid geometry passed; want %q", tc.reason)
			}
			if !strings.Contains(iv.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", iv.Reason, tc.reason)
			}
			if tc.where != nil && (iv.Where == nil || *iv.Where != *tc.where) {
				t.Errorf("where %v, want %v", iv.Where, *tc.where)
			}
		})
	}
}

func TestRepair(t *testing.T) {
	c := NewChecker()
	bowtie := orb.MultiPolygon{{{{0, 0}, {2, 2}, {2, 0}, {0, 2}, {0, 0}}}}
	fixed, err := c.Repair(bowtie)
	if err != nil {
		t.Fatal(err)
	}
	if iv := c.Check(fixed); iv != nil {
		t.Fatalf("repaired geometry still invalid: %s", iv.Reason)
	}
	if len(fixed) != 2 {
		t.Errorf("a bow-tie repairs into its two triangles, got %d polygons", len(fixed))
	}
	if _, err := c.Repair(orb.MultiPolygon{{{{0, 0}, {1, 0}, {1, 1}}}}); err == nil {
		t.Error("an unclosed ring cannot be repaired and should say so")
	}
}

func TestPolygonal(t *testing.T) {
	if _, err := Polygonal(orb.LineString{{0, 0}, {1, 1}}); err == nil || !strings.Contains(err.Error(), "LineString") {
		t.Errorf("a line is not a grid: %v", err)
	}
	if _, err := Polygonal(nil); err == nil {
		t.Error("missing geometry should be an error")
	}
	mp, err := Polygonal(orb.Polygon{{{0, 0}, {1, 0}, {1, 1}, {0, 0}}})
	if err != nil || len(mp) != 1 {
		t.Errorf("polygon -> %v, %v", mp, err)
	}
}

func TestAreaM2(t *testing.T) {
	// One hundredth of a degree square at the equator: about 1113 m x 1106 m.
	a := AreaM2(orb.Polygon{{{0, 0}, {0.01, 0}, {0.01, 0.01}, {0, 0.01}, {0, 0}}})
	if want := 1.2364e6; math.Abs(a-want)/want > 0.01 {
		t.Errorf("area %.0f m2, want about %.0f", a, want)
	}
}
