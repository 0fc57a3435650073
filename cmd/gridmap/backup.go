package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/gridmap/gridmap/postgres"
)

// runBackup writes a pg_dump archive of the database to FILE:
// gridmap backup [--data DIR] FILE. The schema is saved as it is, not
// migrated first, so a backup taken before an upgrade holds the old one.
func runBackup(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	dataDir := dataFlag(fs)
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return fmt.Errorf("backup needs the FILE to write (for example: gridmap backup gridmap-2026-11-30.dump)")
	}
	db, err := openUnmigrated(ctx, *dataDir, logger, postgres.Options{MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close(false)
	size, err := postgres.Backup(ctx, db.DB, db.connString, files[0])
	if err != nil {
		return err
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up schema version %d to %s (%d bytes)\n", v, files[0], size)
	return nil
}

// runRestore loads a backup into the database and migrates it:
// gridmap restore [--replace] [--data DIR] FILE.
func runRestore(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	dataDir := dataFlag(fs)
	replace := fs.Bool("replace", false, "drop what the database holds and restore the backup in its place")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return fmt.Errorf("restore needs the FILE gridmap backup wrote (for example: gridmap restore gridmap-2026-11-30.dump)")
	}
	// A bad file is refused before the managed cluster is started.
	if err := postgres.CheckArchive(files[0]); err != nil {
		return err
	}
	// One connection: the check for other sessions must not count ours.
	db, err := openUnmigrated(ctx, *dataDir, logger, postgres.Options{MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close(false)
	if err := postgres.Restore(ctx, db.DB, db.connString, files[0], *replace); err != nil {
		return err
	}
	from, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("the backup is restored at schema version %d, but migrating it failed (gridmap serve or gridmap migrate tries again): %w", from, err)
	}
	to, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s: schema version %d, migrated to %d\n", files[0], from, to)
	return nil
}
