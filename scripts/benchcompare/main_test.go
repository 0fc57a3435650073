package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func num(v float64) *float64 { return &v }

func TestCompare(t *testing.T) {
	ms := func(name string, value, baseline float64) Figure {
		return Figure{Name: name, Value: num(value), Unit: "ms", Baseline: num(baseline), BaselineUnit: "ms", Ratio: num(baseline / value)}
	}
	tests := []struct {
		name        string
		base, next  []Figure
		want        string   // the flag of the first row
		change      *float64 // of the first row
		ratioChange *float64
	}{
		{
			name: "a ratio within 10% is not flagged",
			base: []Figure{ms("a", 10, 20)}, next: []Figure{ms("a", 11, 21)},
			want: "", change: num(10), ratioChange: num((21.0/11 - 2) / 2 * 100),
		},
		{
			name: "a faster value with a steady ratio is not flagged (the machine was quieter)",
			base: []Figure{ms("a", 10, 20)}, next: []Figure{ms("a", 5, 10)},
			want: "", change: num(-50), ratioChange: num(0),
		},
		{
			name: "a ratio up more than 10% is better",
			base: []Figure{ms("a", 10, 20)}, next: []Figure{ms("a", 8, 20)},
			want: FlagBetter, change: num(-20), ratioChange: num(25),
		},
		{
			name: "a ratio down more than 10% is worse",
			base: []Figure{ms("a", 10, 20)}, next: []Figure{ms("a", 10, 17)},
			want: FlagWorse, change: num(0), ratioChange: num(-15),
		},
		{
			name: "exactly 10% is not flagged",
			base: []Figure{ms("a", 10, 20)}, next: []Figure{ms("a", 10, 22)},
			want: "", change: num(0), ratioChange: num(10),
		},
		{
			name: "a figure without a ratio shows its change and no flag",
			base: []Figure{{Name: "a", Value: num(200), Unit: "ms", Target: "< 50 ms"}},
			next: []Figure{{Name: "a", Value: num(400), Unit: "ms", Target: "< 50 ms"}},
			want: "", change: num(100),
		},
		{
			name: "a changed unit gives no change",
			base: []Figure{{Name: "a", Value: num(2), Unit: "ms"}},
			next: []Figure{{Name: "a", Value: num(2000), Unit: "us"}},
			want: "",
		},
		{
			name: "an old value of zero gives no change",
			base: []Figure{{Name: "a", Value: num(0), Unit: "KB"}},
			next: []Figure{{Name: "a", Value: num(3), Unit: "KB"}},
			want: "",
		},
		{
			name: "measured on neither side",
			base: []Figure{{Name: "a", Unit: "ms"}}, next: []Figure{{Name: "a", Unit: "ms"}},
			want: FlagNotMeasured,
		},
		{
			name: "not measured on one side gives no change and no flag",
			base: []Figure{{Name: "a", Unit: "ms", BaselineUnit: "ms"}}, next: []Figure{ms("a", 10, 20)},
			want: "",
		},
		{
			name: "only in the new table",
			base: nil, next: []Figure{ms("a", 10, 20)},
			want: FlagMissingInBase,
		},
		{
			name: "only in the base table",
			base: []Figure{ms("a", 10, 20)}, next: nil,
			want: FlagMissingInNew,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := Compare(tt.base, tt.next, 10)
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1", len(rows))
			}
			r := rows[0]
			if r.Flag != tt.want {
				t.Errorf("flag %q, want %q", r.Flag, tt.want)
			}
			if !samePercent(r.Change, tt.change) {
				t.Errorf("change %v, want %v", show(r.Change), show(tt.change))
			}
			if !samePercent(r.RatioChange, tt.ratioChange) {
				t.Errorf("ratio change %v, want %v", show(r.RatioChange), show(tt.ratioChange))
			}
		})
	}
}

func TestCompareOrder(t *testing.T) {
	base := []Figure{{Name: "gone"}, {Name: "b"}, {Name: "a"}}
	next := []Figure{{Name: "a"}, {Name: "new"}, {Name: "b"}, {Name: "a"}}
	var got []string
	for _, r := range Compare(base, next, 10) {
		got = append(got, r.Name+":"+r.Flag)
	}
	// The new table's order, then the base's; a repeated name once.
	want := "a:not measured new:missing in base b:not measured gone:missing in new"
	if strings.Join(got, " ") != want {
		t.Errorf("rows %q, want %q", strings.Join(got, " "), want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, wantErr string
		figures             int
	}{
		{name: "a missing file says to run make bench", path: filepath.Join(dir, "none.json"), wantErr: "run `make bench` first"},
		{name: "an invalid file says to run make bench again", path: write("bad.json", "== gridmap"), wantErr: "not a benchmark table"},
		{name: "a figure without a name is refused", path: write("noname.json", `[{"value": 1}]`), wantErr: "has no name"},
		{name: "nulls are not measured", path: write("ok.json", `[{"name": "a", "value": null, "unit": "ms", "baseline": null, "baseline_unit": null, "ratio": null, "target": null, "commit": "abc", "when": "2026-01-01T00:00:00Z"}]`), figures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			figs, err := load(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(figs) != tt.figures || figs[0].Value != nil {
				t.Fatalf("figures %+v", figs)
			}
		})
	}
}

func samePercent(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) < 1e-9
}

func show(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
