// Command benchcompare compares two benchmark tables written by
// scripts/bench.sh (bench/latest.json): per figure, the old and new value,
// the change in percent, and the ratio to the baseline measured in the same
// run, old and new. Ratios are what compares across runs on a noisy machine,
// so only a ratio that moved more than -threshold percent is flagged.
//
//	go run ./scripts/benchcompare -base bench/baseline.json -new bench/latest.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"text/tabwriter"
)

// Figure is one line of a benchmark table. A nil Value is a figure the run
// did not measure; a nil Ratio, one without a baseline. Every ratio reads
// "higher is better".
type Figure struct {
	Name         string   `json:"name"`
	Value        *float64 `json:"value"`
	Unit         string   `json:"unit"`
	Baseline     *float64 `json:"baseline"`
	BaselineUnit string   `json:"baseline_unit"`
	Ratio        *float64 `json:"ratio"`
	Target       string   `json:"target"`
	Commit       string   `json:"commit"`
	When         string   `json:"when"`
}

// Row compares one figure by name. Old or New is nil when that table lacks
// the name; Change and RatioChange are percentages, nil when either side has
// no number to compare (or the units differ, or the old number is zero).
type Row struct {
	Name        string
	Old, New    *Figure
	Change      *float64
	RatioChange *float64
	Flag        string
}

// Flags of a row.
const (
	FlagBetter        = "BETTER"
	FlagWorse         = "WORSE"
	FlagMissingInNew  = "missing in new"
	FlagMissingInBase = "missing in base"
	FlagNotMeasured   = "not measured"
)

// Compare pairs the figures of two tables by name, in the new table's order
// followed by the names only the base has. A ratio that moved by more than
// threshold percent either way is flagged better or worse; a figure missing
// on one side, or measured on neither, is flagged as such. When a name
// repeats in a table, its first figure counts.
func Compare(base, next []Figure, threshold float64) []Row {
	old := make(map[string]*Figure, len(base))
	for i := range base {
		if _, ok := old[base[i].Name]; !ok {
			old[base[i].Name] = &base[i]
		}
	}
	seen := make(map[string]bool, len(next))
	var rows []Row
	for i := range next {
		n := &next[i]
		if seen[n.Name] {
			continue
		}
		seen[n.Name] = true
		rows = append(rows, compareOne(n.Name, old[n.Name], n, threshold))
	}
	for i := range base {
		if b := &base[i]; !seen[b.Name] {
			seen[b.Name] = true
			rows = append(rows, compareOne(b.Name, b, nil, threshold))
		}
	}
	return rows
}

func compareOne(name string, o, n *Figure, threshold float64) Row {
	r := Row{Name: name, Old: o, New: n}
	switch {
	case o == nil:
		r.Flag = FlagMissingInBase
		return r
	case n == nil:
		r.Flag = FlagMissingInNew
		return r
	case o.Value == nil && n.Value == nil:
		r.Flag = FlagNotMeasured
		return r
	}
	if o.Unit == n.Unit {
		r.Change = percent(o.Value, n.Value)
	}
	if o.BaselineUnit == n.BaselineUnit {
		r.RatioChange = percent(o.Ratio, n.Ratio)
	}
	// The margin keeps a ratio that moved by exactly the threshold, as
	// 20 -> 22 does (10.000000000000009% in floating point), unflagged.
	if c := r.RatioChange; c != nil && math.Abs(*c) > threshold+1e-9 {
		r.Flag = FlagWorse
		if *c > 0 {
			r.Flag = FlagBetter
		}
	}
	return r
}

// percent is the change from a to b in percent of a; nil when either is
// missing or a is zero.
func percent(a, b *float64) *float64 {
	if a == nil || b == nil || *a == 0 {
		return nil
	}
	p := (*b - *a) / math.Abs(*a) * 100
	return &p
}

// load reads a table, with an error that says what to do when there is none.
func load(path string) ([]Figure, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s does not exist: run `make bench` first (it writes bench/latest.json; keep a run as the baseline by copying it to bench/baseline.json)", path)
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var figs []Figure
	if err := json.Unmarshal(data, &figs); err != nil {
		return nil, fmt.Errorf("%s is not a benchmark table (%w): run `make bench` again to write a fresh one", path, err)
	}
	for i, f := range figs {
		if f.Name == "" {
			return nil, fmt.Errorf("%s: figure %d has no name: run `make bench` again to write a fresh one", path, i+1)
		}
	}
	return figs, nil
}

// write prints the rows as an aligned table.
func write(w io.Writer, rows []Row) error {
	// Numbers align right; the names, padded to one width, stay left.
	width := len("name")
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\told\tnew\tchange\tratio old\tratio new\tratio change\t\n", width, "name")
	for _, r := range rows {
		flag := ""
		if r.Flag != "" {
			flag = "  " + r.Flag
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", width, r.Name,
			value(r.Old), value(r.New), change(r.Change),
			ratio(r.Old), ratio(r.New), change(r.RatioChange), flag)
	}
	return tw.Flush()
}

func value(f *Figure) string {
	switch {
	case f == nil:
		return "-"
	case f.Value == nil:
		return "not measured"
	}
	return number(*f.Value) + " " + f.Unit
}

// number shows v with about three significant digits, without exponents for
// the throughputs in the hundred thousands.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func ratio(f *Figure) string {
	if f == nil || f.Ratio == nil {
		return ""
	}
	return fmt.Sprintf("%.2fx", *f.Ratio)
}

func change(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%+.1f%%", *p)
}

func main() {
	basePath := flag.String("base", "bench/baseline.json", "the earlier run's table")
	newPath := flag.String("new", "bench/latest.json", "the later run's table")
	threshold := flag.Float64("threshold", 10, "flag a ratio that moved by more than this many percent")
	flag.Parse()
	base, err := load(*basePath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(2)
	}
	next, err := load(*newPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(2)
	}
	fmt.Printf("%s (%s, %s) -> %s (%s, %s); every ratio reads higher is better; flagged when it moved more than %g%%\n",
		*basePath, runOf(base), whenOf(base), *newPath, runOf(next), whenOf(next), *threshold)
	if err := write(os.Stdout, Compare(base, next, *threshold)); err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(1)
	}
}

func runOf(figs []Figure) string {
	if len(figs) == 0 || figs[0].Commit == "" {
		return "commit unknown"
	}
	return "commit " + figs[0].Commit
}

func whenOf(figs []Figure) string {
	if len(figs) == 0 || figs[0].When == "" {
		return "time unknown"
	}
	return figs[0].When
}
