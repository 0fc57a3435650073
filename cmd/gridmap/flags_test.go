package main

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
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
