package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"golang.org/x/term"
)

func runImport(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	layerID := fs.String("layer", "", "layer to import into (created with --levels when it does not exist)")
	level := fs.String("level", "", "level of every feature (else each feature's level property)")
	codeField := fs.String("code-field", "code", "property holding the grid code")
	nameField := fs.String("name-field", "name", "property holding the grid name")
	parentField := fs.String("parent-field", "parent", "property holding the parent's code")
	levelField := fs.String("level-field", "level", "property holding the level, when --level is not given")
	levels := fs.String("levels", "", "the layer's levels, coarsest first (a,b,c): creates or redefines the layer")
	kind := fs.String("kind", gridmap.KindComprehensive, "kind of a new layer: comprehensive or departmental")
	skipInvalid := fs.Bool("skip-invalid", false, "import the valid features and report the rest")
	makeValid := fs.Bool("make-valid", false, "repair invalid geometry and report each repair")
	draft := fs.Bool("draft", false, "load into the layer's draft: overlaps, gaps and spills are kept and listed, to be fixed and published")
	reason := fs.String("reason", "import", "reason recorded with the new versions")
	dataDir := dataFlag(fs)
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *layerID == "" || len(files) != 1 {
		fmt.Fprintln(os.Stderr, "usage: gridmap import --layer L [--level LEVEL] [--code-field F] [...] FILE (- for standard input)")
		return exitError(2)
	}
	in, size, err := openInput(files[0])
	if err != nil {
		return err
	}
	defer in.Close()

	db, err := openDatabase(ctx, *dataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close(false)
	var levelList []string
	if *levels != "" {
		levelList = strings.Split(*levels, ",")
	}

	counted := &countingReader{r: in}
	fields := geo.FieldMap{Code: *codeField, Name: *nameField, Parent: *parentField, Level: *levelField, DefaultLevel: *level}
	if *level != "" {
		fields.Level = ""
	}
	progress := newProgress(os.Stderr, size, counted)
	res, err := postgres.NewGridStore(db.DB).Import(ctx, *layerID, geo.NewFeatureReader(counted, fields), gridmap.ImportOptions{
		Levels: levelList, Kind: *kind, SkipInvalid: *skipInvalid, MakeValid: *makeValid, Draft: *draft, Author: "gridmap import", Reason: *reason, Progress: progress.update,
	})
	progress.done()
	if err != nil {
		var ge *gridmap.Error
		if errors.As(err, &ge) && ge.Code == gridmap.EUNPROCESSABLE {
			printProblems(stdout, "rejected", ge.Details)
			fmt.Fprintf(stdout, "nothing imported: %s\n", ge.Message)
			return exitError(1)
		}
		return err
	}
	printProblems(stdout, "repaired", res.Repaired)
	printProblems(stdout, "rejected", res.Rejected)
	if res.Draft {
		printProblems(stdout, "problem", res.Problems)
		fmt.Fprintf(stdout, "into the draft of layer %s (%d problems to fix or accept before publishing)\n", res.Layer, len(res.Problems))
	}
	fmt.Fprintf(stdout, "layer %s: %d read, %d created, %d replaced, %d unchanged, %d rejected, %d repaired (data version %d)\n",
		res.Layer, res.Read, res.Created, res.Replaced, res.Unchanged, len(res.Rejected), len(res.Repaired), res.DataVersion)
	if len(res.Rejected) > 0 {
		return exitError(1)
	}
	return nil
}

func openInput(name string) (io.ReadCloser, int64, error) {
	if name == "-" {
		return io.NopCloser(os.Stdin), 0, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if info, err := f.Stat(); err == nil {
		size = info.Size()
	}
	return f, size, nil
}

func printProblems(w io.Writer, what string, problems []gridmap.Problem) {
	for _, p := range problems {
		idx := "-"
		if p.Index != nil {
			idx = fmt.Sprint(*p.Index)
		}
		code := ""
		if len(p.Codes) > 0 {
			code = " code " + p.Codes[0]
		}
		fmt.Fprintf(w, "%s feature %s%s: %s: %s\n", what, idx, code, p.Kind, p.Message)
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// progress shows how far an import has read: a bar redrawn in place on a
// terminal, a plain line every few seconds otherwise.
type progress struct {
	w        io.Writer
	size     int64
	read     *countingReader
	terminal bool
	last     time.Time
	features int
}

func newProgress(w *os.File, size int64, read *countingReader) *progress {
	return &progress{w: w, size: size, read: read, terminal: term.IsTerminal(int(w.Fd()))}
}

func (p *progress) update(features int) {
	p.features = features
	interval := 5 * time.Second
	if p.terminal {
		interval = 100 * time.Millisecond
	}
	if time.Since(p.last) < interval {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	pct := -1.0
	if p.size > 0 {
		pct = 100 * float64(p.read.n.Load()) / float64(p.size)
	}
	if !p.terminal {
		if pct >= 0 {
			fmt.Fprintf(p.w, "import: %d features read (%.0f%%)\n", p.features, pct)
		} else {
			fmt.Fprintf(p.w, "import: %d features read\n", p.features)
		}
		return
	}
	const width = 30
	filled := 0
	if pct >= 0 {
		filled = int(pct / 100 * width)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d features", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), max(pct, 0), p.features)
}

func (p *progress) done() {
	p.draw()
	if p.terminal {
		fmt.Fprintln(p.w)
	}
}
