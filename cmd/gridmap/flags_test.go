package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap/hugepage"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       string
		layer      string
		tolerance  float64
		verbose    bool
		positional string
		err        string
	}{
		{"flags first", "--layer L 1 2", "L", 0, false, "1 2", ""},
		{"flags last", "1 2 --layer L", "L", 0, false, "1 2", ""},
		{"a flag's value is taken even when it is a number", "--layer 12 120.1 30.2", "12", 0, false, "120.1 30.2", ""},
		{"a flag's value is taken even when it is negative", "--tolerance-m -1 5 6", "", -1, false, "5 6", ""},
		{"a negative number elsewhere is positional", "-73.9 40.7 --layer L", "L", 0, false, "-73.9 40.7", ""},
		{"a negative number after a boolean flag is positional", "-v -73.9 40.7", "", 0, true, "-73.9 40.7", ""},
		{"name=value takes no next argument", "--layer=12 -73.9 40.7", "12", 0, false, "-73.9 40.7", ""},
		{"single dash flags", "-layer 12 1 2", "12", 0, false, "1 2", ""},
		{"everything after -- is positional", "--layer L -- --layer x", "L", 0, false, "--layer x", ""},
		{"an unknown flag is an error", "--nope 1 2", "", 0, false, "", "flag provided but not defined: -nope"},
		{"a flag without its value is an error", "1 2 --layer", "", 0, false, "", "flag needs an argument: -layer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			layer := fs.String("layer", "", "")
			tolerance := fs.Float64("tolerance-m", 0, "")
			verbose := fs.Bool("v", false, "")
			positional, err := parseFlags(fs, strings.Fields(tc.args))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *layer != tc.layer || *tolerance != tc.tolerance || *verbose != tc.verbose || !slices.Equal(positional, strings.Fields(tc.positional)) {
				t.Errorf("layer %q tolerance %v verbose %v positional %q", *layer, *tolerance, *verbose, positional)
			}
		})
	}
}

func TestTrackRetentionFlag(t *testing.T) {
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"days", "180d", 180 * 24 * time.Hour},
		{"a single day", "1d", 24 * time.Hour},
		{"a duration", "4320h", 4320 * time.Hour},
		{"minutes", "90m", 90 * time.Minute},
		{"ten years at most", "3650d", 3650 * 24 * time.Hour},
		{"no unit", "180", 0},
		{"zero days", "0d", 0},
		{"negative", "-5d", 0},
		{"past ten years", "3651d", 0},
		{"fractional days", "1.5d", 0},
		{"words", "half a year", 0},
		{"empty", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trackRetentionOf(tc.value)
			if tc.want == 0 {
				if err == nil || !strings.Contains(err.Error(), "--track-retention") || !strings.Contains(err.Error(), "such as 180d") {
					t.Errorf("%q: %v, %v; want an error naming the flag and saying what to give", tc.value, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("%q: %v, %v; want %v", tc.value, got, err, tc.want)
			}
		})
	}

	// gridmap serve refuses a bad value before it touches the database,
	// from the flag or from GRIDMAP_TRACK_RETENTION.
	logger := slog.New(slog.DiscardHandler)
	err := runServe(context.Background(), []string{"--data", t.TempDir(), "--track-retention", "0d"}, io.Discard, logger)
	if err == nil || !strings.Contains(err.Error(), `--track-retention "0d"`) {
		t.Errorf("serve --track-retention 0d: %v, want it refused naming the flag", err)
	}
	t.Setenv("GRIDMAP_TRACK_RETENTION", "forever")
	err = runServe(context.Background(), []string{"--data", t.TempDir()}, io.Discard, logger)
	if err == nil || !strings.Contains(err.Error(), `--track-retention "forever"`) {
		t.Errorf("serve with GRIDMAP_TRACK_RETENTION=forever: %v, want it refused naming the flag", err)
	}
}

// TestHugePagesFlag: serve --huge-pages=false, or GRIDMAP_HUGE_PAGES=false,
// keeps lookup indexes in small pages; by default they move where the
// machine allows.
func TestHugePagesFlag(t *testing.T) {
	if hugepage.Size() == 0 {
		t.Skip("no huge pages on request here")
	}
	t.Cleanup(func() { hugepage.Enable(true) })
	logger := slog.New(slog.DiscardHandler)
	// A time zone that does not exist stops serve before the database,
	// with its flags read.
	serve := func(args ...string) {
		t.Helper()
		err := runServe(context.Background(), append([]string{"--data", t.TempDir(), "--time-zone", "Nowhere/Never"}, args...), io.Discard, logger)
		if err == nil || !strings.Contains(err.Error(), "Nowhere/Never") {
			t.Fatalf("serve %q: %v, want the time zone refused", args, err)
		}
	}
	serve("--huge-pages=false")
	if hugepage.Size() != 0 {
		t.Errorf("--huge-pages=false: huge pages of %d bytes still asked for", hugepage.Size())
	}
	serve()
	if hugepage.Size() == 0 {
		t.Errorf("by default: no huge pages asked for")
	}
	t.Setenv("GRIDMAP_HUGE_PAGES", "false")
	serve()
	if hugepage.Size() != 0 {
		t.Errorf("GRIDMAP_HUGE_PAGES=false: huge pages of %d bytes still asked for", hugepage.Size())
	}
}
