package postgres

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// archiveMagic opens every pg_dump custom-format archive.
const archiveMagic = "PGDMP"

// Backup writes a pg_dump custom-format archive (-Fc) of the gridmap
// database at connString to path. pg_dump writes a temporary file beside
// path, which is synced and renamed over path only once pg_dump has
// succeeded: path is either as it was or the whole new archive. Returns the
// archive's size. The schema is dumped as it is, never migrated first.
func Backup(ctx context.Context, db *DB, connString, path string) (int64, error) {
	var hasSchema bool
	if err := db.Pool.QueryRow(ctx, "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&hasSchema); err != nil {
		return 0, fmt.Errorf("reading the database: %w", err)
	}
	if !hasSchema {
		return 0, fmt.Errorf("the database holds no gridmap schema, so there is nothing to back up: check DATABASE_URL or --data")
	}
	pgDump, env, _, err := tool(ctx, db, "pg_dump", connString)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("cannot write the backup beside %s: %w", path, err)
	}
	tmp.Close()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp.Name())
		}
	}()
	if err := runTool(ctx, pgDump, env, "--format=custom", "--file="+tmp.Name()); err != nil {
		return 0, fmt.Errorf("pg_dump failed, no backup written: %w", err)
	}
	size, err := syncFile(tmp.Name())
	if err != nil {
		return 0, fmt.Errorf("writing the backup: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("writing the backup: %w", err)
	}
	renamed = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename itself on disk
		d.Close()
	}
	return size, nil
}

func syncFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// CheckArchive reports whether path is a file pg_dump wrote in its custom
// format, with an error that says what to give instead.
func CheckArchive(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s does not exist: give the path of a backup made by gridmap backup", path)
	} else if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return fmt.Errorf("%s is a directory: give the file gridmap backup wrote", path)
	}
	head := make([]byte, len(archiveMagic))
	if _, err := io.ReadFull(f, head); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	if string(head) != archiveMagic {
		return fmt.Errorf("%s is not a pg_dump custom-format archive (gridmap backup and pg_dump -Fc make them; a plain SQL dump is loaded with psql instead)", path)
	}
	return nil
}

// Restore loads the archive at path into the database at connString with
// pg_restore in one transaction (--single-transaction): when anything
// fails, nothing has changed. A database that already has tables is
// refused unless replace is set; then the archive's objects are dropped
// before they are created again (--clean --if-exists), and a database with
// tables the archive lacks (a newer schema) is refused, since the
// migrations could not bring the restored schema up over them. Objects
// belong to the restoring role (--no-owner --no-privileges) and extensions
// already there are left alone (restoreList), so a role that owns the
// database but not PostGIS can restore. Restore does not migrate: the
// caller does once it returns.
func Restore(ctx context.Context, db *DB, connString, path string, replace bool) error {
	// Absolute, so that a name starting with a dash is never read as an
	// option of pg_restore's.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := CheckArchive(path); err != nil {
		return err
	}
	pgRestore, env, dbName, err := tool(ctx, db, "pg_restore", connString)
	if err != nil {
		return err
	}
	var list bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore, "--list", path)
	cmd.Stdout = &list
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s is not a readable pg_dump archive (%s): give a backup made by gridmap backup", path, lastLines(stderr.String(), 3))
	}
	archived := archiveTables(list.Bytes())
	if !slices.Contains(archived, "public.goose_db_version") {
		return fmt.Errorf("%s is a pg_dump archive but not of a gridmap database (it has no goose_db_version table)", path)
	}
	if err := checkRestoreTarget(ctx, db, archived, replace); err != nil {
		return err
	}
	useList, err := restoreList(ctx, db, list.Bytes())
	if err != nil {
		return err
	}
	defer os.Remove(useList)
	args := []string{"--dbname=" + dbName, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--use-list=" + useList}
	if replace {
		args = append(args, "--clean", "--if-exists")
	}
	if err := runTool(ctx, pgRestore, env, append(args, path)...); err != nil {
		return fmt.Errorf("pg_restore failed and was rolled back, the database is as it was: %w", err)
	}
	return nil
}

// checkRestoreTarget refuses to restore into a database that has tables
// (unless replace), that has tables the archive lacks, or that other
// sessions are using.
func checkRestoreTarget(ctx context.Context, db *DB, archived []string, replace bool) error {
	tables, err := userTables(ctx, db)
	if err != nil {
		return err
	}
	if len(tables) > 0 && !replace {
		return fmt.Errorf("the database already holds %d tables: restoring would mix two databases; add --replace to drop the backup's tables there and restore it in their place", len(tables))
	}
	var extra []string
	for _, t := range tables {
		if !slices.Contains(archived, t) {
			extra = append(extra, t)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("the database has tables the backup lacks (%s), so its schema is newer than the backup's: restore into an empty database (a new --data directory, or a newly created database in DATABASE_URL); gridmap restore then migrates it", strings.Join(extra, ", "))
	}
	var others int
	const q = `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	if err := db.Pool.QueryRow(ctx, q).Scan(&others); err != nil {
		return fmt.Errorf("reading the database's sessions: %w", err)
	}
	if others > 0 {
		return fmt.Errorf("%d other sessions are connected to the database (a running gridmap serve?): stop them before restoring", others)
	}
	return nil
}

// userTables lists the tables of the database that belong to no extension
// (PostGIS's spatial_ref_sys does), as schema.name; partitions are left out,
// as they go with their table.
func userTables(ctx context.Context, db *DB) ([]string, error) {
	const q = `
		SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d
		                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1`
	rows, err := db.Pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing the database's tables: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// tocExtension matches an extension in pg_restore --list, and its comment:
// "4; 3079 16385 EXTENSION - postgis", "5; 0 0 COMMENT - EXTENSION postgis".
var tocExtension = regexp.MustCompile(`^\d+; \d+ \d+ (?:EXTENSION - |COMMENT - EXTENSION )(\S+)`)

// tocTableData matches a table's rows in pg_restore --list:
// "4310; 0 16390 TABLE DATA public spatial_ref_sys gridmap".
var tocTableData = regexp.MustCompile(`^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) `)

// installedSQL lists the database's extensions, and the tables that belong
// to them (PostGIS's spatial_ref_sys) as schema.name.
const installedSQL = `
	SELECT extname FROM pg_extension
	UNION ALL
	SELECT n.nspname || '.' || c.relname FROM pg_depend d
	JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'r'`

// restoreList writes the archive's table of contents (pg_restore --list)
// to a temporary file for pg_restore --use-list, leaving out the extensions
// the database already has with the rows of their tables, and every
// extension's comment: only an extension's owner may drop it, comment on it
// or write its tables, and a hosted database's role seldom owns PostGIS.
// (Coordinate systems added to spatial_ref_sys by hand are then not
// restored; gridmap adds none.) Returns the file's path.
func restoreList(ctx context.Context, db *DB, list []byte) (string, error) {
	installed := map[string]bool{}
	rows, err := db.Pool.Query(ctx, installedSQL)
	if err != nil {
		return "", fmt.Errorf("listing the database's extensions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("listing the database's extensions: %w", err)
	}
	for _, name := range names {
		installed[name] = true
	}
	var kept bytes.Buffer
	for _, line := range strings.SplitAfter(string(list), "\n") {
		if m := tocExtension.FindStringSubmatch(line); m != nil && (installed[m[1]] || strings.Contains(line, " COMMENT - ")) {
			continue
		}
		if m := tocTableData.FindStringSubmatch(line); m != nil && installed[m[1]+"."+m[2]] {
			continue
		}
		kept.WriteString(line)
	}
	f, err := os.CreateTemp("", "gridmap-restore-*.list")
	if err != nil {
		return "", fmt.Errorf("writing pg_restore's list: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(kept.Bytes()); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing pg_restore's list: %w", err)
	}
	return f.Name(), nil
}

// tocTable matches a table in pg_restore --list, "215; 1259 16390 TABLE
// public grid_versions gridmap" (schema, name, owner), and not its data,
// "4310; 0 16390 TABLE DATA public grid_versions gridmap".
var tocTable = regexp.MustCompile(`^\d+; \d+ \d+ TABLE (\S+) (\S+) \S*$`)

// archiveTables lists the tables of a pg_restore --list, as schema.name.
func archiveTables(list []byte) []string {
	var tables []string
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		if m := tocTable.FindStringSubmatch(sc.Text()); m != nil {
			tables = append(tables, m[1]+"."+m[2])
		}
	}
	return tables
}

// tool finds the PostgreSQL program name (pg_dump, pg_restore) of the
// server's major version, which reads and writes what that server does,
// and the environment that points it at connString without putting the
// password on its command line, with the name of the database.
func tool(ctx context.Context, db *DB, name, connString string) (path string, env []string, dbName string, err error) {
	var num int
	if err := db.Pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return "", nil, "", fmt.Errorf("reading the server's version: %w", err)
	}
	if path, err = findTool(name, num/10000); err != nil {
		return "", nil, "", err
	}
	env, dbName, err = toolEnv(connString)
	return path, env, dbName, err
}

// toolVersion reads the major version from "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
var toolVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// findTool looks for name of PostgreSQL major: Debian's
// /usr/lib/postgresql/MAJOR/bin first, then pg_config --bindir and PATH
// when the program found there says it is of that major version.
func findTool(name string, major int) (string, error) {
	candidates := []string{filepath.Join(fmt.Sprintf("/usr/lib/postgresql/%d/bin", major), name)}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, filepath.Join(strings.TrimSpace(string(out)), name))
	}
	if p, err := exec.LookPath(name); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		out, err := exec.Command(p, "--version").Output()
		if err != nil {
			continue
		}
		if m := toolVersion.FindSubmatch(out); m != nil && string(m[1]) == strconv.Itoa(major) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s of PostgreSQL %d not found (the server is PostgreSQL %d, and its backups need the tools of that version): install the Debian package postgresql-client-%d", name, major, major, major)
}

// sslParams are the libpq TLS settings a connection string may carry, which
// pgx parses into a tls.Config that cannot be handed on.
var sslParams = regexp.MustCompile(`\b(sslmode|sslrootcert|sslcert|sslkey)=([^&\s]+)`)

// toolEnv turns connString (a URL or key=value pairs, possibly with pgx's
// own pool settings, which libpq rejects) into libpq environment variables.
func toolEnv(connString string) (env []string, dbName string, err error) {
	c, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, "", fmt.Errorf("database address: %w", err)
	}
	env = append(os.Environ(), "PGAPPNAME=gridmap", "PGCONNECT_TIMEOUT=30")
	for k, v := range map[string]string{
		"PGHOST": c.Host, "PGPORT": strconv.Itoa(int(c.Port)), "PGUSER": c.User,
		"PGDATABASE": c.Database, "PGPASSWORD": c.Password,
	} {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	for _, m := range sslParams.FindAllStringSubmatch(connString, -1) {
		env = append(env, "PG"+strings.ToUpper(m[1])+"="+strings.Trim(m[2], `'`))
	}
	return env, c.Database, nil
}

// runTool runs a PostgreSQL program; its error carries the last lines the
// program wrote.
func runTool(ctx context.Context, path string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 5))
	}
	return nil
}
