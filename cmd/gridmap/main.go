// Command gridmap is the grid governance map service: it serves boundaries,
// lookups and reports over HTTP, and imports and manages grid layers.
//
//	gridmap serve [--addr 127.0.0.1:8080] [--data DIR] [--demo]
//	gridmap import --layer L --level LEVEL --code-field F [...] FILE
//	gridmap lookup [--layer L] [--crs C] LON LAT
//	gridmap demo [--data DIR]
//	gridmap migrate [--data DIR]
//
// Every subcommand that touches the database uses DATABASE_URL when it is
// set, else the managed PostgreSQL cluster under --data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	// Deadlines need the time zone database even where the system has none.
	_ "time/tzdata"
)

const usage = `gridmap: grid governance map service

Usage:
  gridmap serve   [--addr 127.0.0.1:8080] [--data DIR] [--demo]
  gridmap import  --layer L [--level LEVEL] [--code-field F] [--name-field F] [--parent-field F]
                  [--levels a,b,c] [--kind comprehensive|departmental] [--skip-invalid] [--make-valid] FILE
  gridmap lookup  [--layer L] [--crs wgs84|cgcs2000|gcj02|bd09] [--tolerance-m M] [--accuracy-m M]
                  [--at RFC3339] [--data DIR] LON LAT
  gridmap demo    [--data DIR] [--seed N]
  gridmap migrate [--data DIR]

Environment: DATABASE_URL (use this database instead of the managed one),
GRIDMAP_ADDR, GRIDMAP_DATA, GRIDMAP_TIME_ZONE (default Asia/Shanghai).
`

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, logger)
	var exit exitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "gridmap:", err)
		os.Exit(1)
	}
}

// exitError ends the program with a status after its output said why.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func run(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitError(2)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, logger)
	case "import":
		return runImport(ctx, rest, stdout, logger)
	case "lookup":
		return runLookup(ctx, rest, stdout, logger)
	case "demo":
		return runDemo(ctx, rest, stdout, logger)
	case "migrate":
		return runMigrate(ctx, rest, stdout, logger)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(os.Stderr, "gridmap: unknown command %q\n\n%s", cmd, usage)
		return exitError(2)
	}
}

// parseFlags parses flags that may come before or after the positional
// arguments (gridmap import FILE --layer L works too).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dataFlag adds the --data flag every command that touches the database takes.
func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", envOr("GRIDMAP_DATA", "./gridmap-data"), "data directory of the managed PostgreSQL cluster (unused with DATABASE_URL)")
}
