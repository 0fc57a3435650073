// Command gridmap is the grid governance map service: it serves boundaries,
// lookups and reports over HTTP, and imports and manages grid layers.
//
//	gridmap serve [--addr 127.0.0.1:8080] [--data DIR] [--demo]
//	gridmap import --layer L --level LEVEL --code-field F [...] FILE
//	gridmap lookup [--layer L] [--crs C] LON LAT
//	gridmap demo [--data DIR]
//	gridmap migrate [--data DIR]
//	gridmap backup [--data DIR] FILE
//	gridmap restore [--replace] [--data DIR] FILE
//	gridmap user add|list|disable|enable|passwd ...
//	gridmap token create|list|revoke ...
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
	"strconv"
	"strings"
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
  gridmap backup  [--data DIR] FILE
  gridmap restore [--replace] [--data DIR] FILE
  gridmap user    add NAME --role ROLE [--scope CODE] [--layer L] [--display-name S]
                  [--person LAYER/GRID/NAME] [--password-file F]
  gridmap user    list | disable NAME | enable NAME | passwd NAME [--password-file F]
  gridmap token   create --role ROLE [--scope CODE] [--layer L] [--name NAME] [--expires 30d]
  gridmap token   list | revoke NAME

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
	case "backup":
		return runBackup(ctx, rest, stdout, logger)
	case "restore":
		return runRestore(ctx, rest, stdout, logger)
	case "user":
		return runUser(ctx, rest, stdout, logger)
	case "token":
		return runToken(ctx, rest, stdout, logger)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(os.Stderr, "gridmap: unknown command %q\n\n%s", cmd, usage)
		return exitError(2)
	}
}

// parseFlags parses flags that may come before or after the positional
// arguments (gridmap import FILE --layer L works too) and returns the
// positional ones. The argument after a flag that takes a value is that
// value, whatever it looks like (--layer 12, --tolerance-m -1); a negative
// number anywhere else is positional, not a flag (gridmap lookup -73.9 40.7).
// Everything after "--" is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case isFlag(a):
			flags = append(flags, a)
			if takesValue(fs, a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return positional, nil
}

// isFlag reports whether arg names a flag: it starts with "-" and is not a
// number or "-" alone.
func isFlag(arg string) bool {
	if len(arg) < 2 || arg[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(arg, 64)
	return err != nil
}

// takesValue reports whether the flag arg names takes the next argument as
// its value: it is defined, not boolean, and not written as -name=value.
func takesValue(fs *flag.FlagSet, arg string) bool {
	name := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dataFlag adds the --data flag every command that touches the database takes.
func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", envOr("GRIDMAP_DATA", "./gridmap-data"), "data directory: the managed PostgreSQL cluster (not started with DATABASE_URL) and the first admin's password file")
}
