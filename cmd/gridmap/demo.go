package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/postgres"
)

func runDemo(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := dataFlag(fs)
	seed := fs.Uint64("seed", demo.DefaultSeed, "seed of the generated district")
	districts := fs.Int("districts", 1, fmt.Sprintf("districts of the generated province, side by side, 1 to %d; the first is the demo district", demo.MaxDistricts))
	nReports := fs.Int("reports", demoReports, "without the flag: file the demo's reports of the last two weeks, unless reports exist; "+
		"with it: make the seed's year of reports (external ids demo-<seed>-y<n>, a tenth of the older ones moved on) hold this many, filing those missing")
	timeZone := fs.String("time-zone", envOr("GRIDMAP_TIME_ZONE", dispatch.DefaultTimeZone), "time zone deadlines are counted in (as gridmap serve's)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	tz, err := time.LoadLocation(*timeZone)
	if err != nil {
		return fmt.Errorf("--time-zone %q: %w", *timeZone, err)
	}
	history := false
	fs.Visit(func(f *flag.Flag) { history = history || f.Name == "reports" })
	if *nReports < 0 {
		return fmt.Errorf("--reports %d: give a number of reports, 0 or more", *nReports)
	}
	if *districts < 1 || *districts > demo.MaxDistricts {
		return fmt.Errorf("--districts %d: give a number of districts from 1 to %d", *districts, demo.MaxDistricts)
	}
	db, err := openDatabase(ctx, *dataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close(false)
	start := time.Now()
	d, results, err := generateDemo(ctx, db.DB, *seed, *districts)
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintf(stdout, "layer %s: %d grids, %d created, %d replaced, %d unchanged\n", r.Layer, r.Read, r.Created, r.Replaced, r.Unchanged)
	}
	what := "1 district"
	if *districts > 1 {
		what = fmt.Sprintf("%d districts", *districts)
	}
	fmt.Fprintf(stdout, "%s generated and loaded in %s\n", what, time.Since(start).Round(time.Millisecond))
	indexed := time.Now()
	locator := postgres.NewLocator(db.DB)
	if err := locator.Load(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "lookup index built in %s\n", time.Since(indexed).Round(time.Millisecond))
	if history {
		if err := loadDemoHistory(ctx, db.DB, locator, d, *seed, *nReports, tz, stdout); err != nil {
			return err
		}
	} else {
		n, err := loadDemoReports(ctx, db.DB, locator, d, *seed, tz)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "responsibility list: %d departments, %d categories; %d reports filed\n", len(demo.Departments), len(demo.Categories), n)
	}
	fmt.Fprintf(stdout, "demo district loaded in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// demoReports is how many reports the demo files.
const demoReports = 300

// loadDemoReports defines the demo responsibility list and files the demo
// reports in the micro-grids of d (nil: of the demo district of seed),
// unless reports exist already. The locator must hold the demo layers.
func loadDemoReports(ctx context.Context, db *postgres.DB, locator *postgres.Locator, d *demo.District, seed uint64, tz *time.Location) (int, error) {
	if err := demo.LoadResponsibility(ctx, postgres.NewCategoryStore(db)); err != nil {
		return 0, err
	}
	reports := postgres.NewReportStore(db, locator, tz)
	if existing, _, err := reports.Reports(ctx, gridmap.ReportFilter{Limit: 1}); err != nil || len(existing) > 0 {
		return 0, err
	}
	if d == nil {
		var err error
		if d, err = demo.Generate(seed); err != nil {
			return 0, err
		}
	}
	return demo.LoadReports(ctx, reports, d, seed, demoReports)
}

// loadDemoHistory defines the demo responsibility list and files the
// seed's year of n reports (demo.LoadHistory) in the micro-grids of d, as
// many at once as the pool has connections, printing progress to stdout. Reports of the history
// already there are left as they are, so a run again files only what is
// missing.
func loadDemoHistory(ctx context.Context, db *postgres.DB, locator *postgres.Locator, d *demo.District, seed uint64, n int, tz *time.Location, stdout io.Writer) error {
	if err := demo.LoadResponsibility(ctx, postgres.NewCategoryStore(db)); err != nil {
		return err
	}
	start := time.Now()
	var printing sync.Mutex // workers report progress from their goroutines
	h := demo.History{Seed: seed, N: n, Workers: int(db.Pool.Config().MaxConns), Progress: func(done int) {
		printing.Lock()
		defer printing.Unlock()
		fmt.Fprintf(stdout, "%d of %d reports done in %s\n", done, n, time.Since(start).Round(time.Second))
	}}
	res, err := demo.LoadHistory(ctx, postgres.NewReportStore(db, locator, tz), d, h)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "responsibility list: %d departments, %d categories; %d reports of a year filed (%d there already), %d moved on by %d workflow events\n",
		len(demo.Departments), len(demo.Categories), res.Filed, res.Existing, res.Moved, res.Moves)
	return nil
}

// loadDemo loads the demo district unless it is there already.
func loadDemo(ctx context.Context, db *postgres.DB, seed uint64, logger *slog.Logger) error {
	if loaded, err := demo.Loaded(ctx, postgres.NewLayerStore(db)); err != nil {
		return err
	} else if loaded {
		logger.Info("demo district already loaded")
		return nil
	}
	start := time.Now()
	if _, _, err := generateDemo(ctx, db, seed, 1); err != nil {
		return err
	}
	logger.Info("demo district loaded", "duration", time.Since(start).String())
	return nil
}

// generateDemo generates the province of seed with n districts (1: the
// demo district) and loads it (demo.LoadProvince). The District returned
// holds the micro-grids, where reports go.
func generateDemo(ctx context.Context, db *postgres.DB, seed uint64, n int) (*demo.District, []*gridmap.ImportResult, error) {
	return demo.LoadProvince(ctx, postgres.NewLayerStore(db), postgres.NewGridStore(db), seed, n, 0)
}

func runMigrate(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	dataDir := dataFlag(fs)
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := openDatabase(ctx, *dataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close(false)
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}
