package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Restore loads the archive at path into the database at connString with
// pg_restore in one transaction (--single-transaction): when anything
// fails, nothing has changed. It holds the restore lock exclusively
// throughout (see restoreLockID), so that no serve or migrate starts on a
// half-restored database; and it refuses, having changed nothing:
//   - an archive that is not of a gridmap database, or whose schema version
//     is newer than this binary's (LatestSchemaVersion);
//   - a database that other sessions use, or that a restore or a migration
//     is working on now;
//   - a database that is not empty, as checkRestoreTarget says.
//
// With replace, the archive's objects are dropped before they are created
// again (--clean --if-exists). Objects belong to the restoring role
// (--no-owner --no-privileges) and extensions already there are left alone
// (restoreList), so a role that owns the database but not PostGIS can
// restore. Restore does not migrate: the caller does once it returns.
func Restore(ctx context.Context, db *DB, connString, path string, replace bool) error {
	return restoreArchive(ctx, db, connString, path, replace, nil)
}

// restoreArchive is Restore, calling loading (when not nil) once the
// checks have passed, under the lock, just before pg_restore runs.
func restoreArchive(ctx context.Context, db *DB, connString, path string, replace bool, loading func()) error {
	// Absolute, so that a name starting with a dash is never read as an
	// option of pg_restore's.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := CheckArchive(path); err != nil {
		return err
	}
	// Every check and the lock on one session: the caller's pool may hold
	// a single connection.
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer conn.Release()
	pgRestore, env, dbName, err := tool(ctx, conn, "pg_restore", connString)
	if err != nil {
		return err
	}
	archive, err := readArchive(ctx, pgRestore, env, path)
	if err != nil {
		return err
	}
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", restoreLockID).Scan(&locked); err != nil {
		return fmt.Errorf("locking the database for the restore: %w", err)
	}
	if !locked {
		return fmt.Errorf("another gridmap restore, or a gridmap command migrating the database, is working on it now: try again once it has finished; nothing was changed")
	}
	// Unlocked before the caller migrates, as Migrate takes the lock shared
	// on a session of its own.
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", restoreLockID)
	if err := checkRestoreTarget(ctx, conn, archive.tables, archive.version, replace); err != nil {
		return err
	}
	useList, err := restoreList(ctx, conn, archive.list)
	if err != nil {
		return err
	}
	defer os.Remove(useList)
	args := []string{"--dbname=" + dbName, "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges", "--use-list=" + useList}
	if replace {
		args = append(args, "--clean", "--if-exists")
	}
	if loading != nil {
		loading()
	}
	if err := runTool(ctx, pgRestore, env, append(args, path)...); err != nil {
		return fmt.Errorf("pg_restore failed and was rolled back, the database is as it was: %w", err)
	}
	return nil
}

// archiveContents is what Restore reads of an archive before loading it.
type archiveContents struct {
	list    []byte   // pg_restore --list
	tables  []string // archiveTables
	version int64    // archiveSchemaVersion
}

// readArchive reads the table of contents and schema version of the
// archive at path, refusing one that is not of a gridmap database or is of
// a schema newer than this binary's.
func readArchive(ctx context.Context, pgRestore string, env []string, path string) (*archiveContents, error) {
	var list, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore, "--list", path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &list, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s is not a readable pg_dump archive (%s): give a backup made by gridmap backup", path, lastLines(stderr.String(), 3))
	}
	a := &archiveContents{list: list.Bytes(), tables: archiveTables(list.Bytes())}
	if !slices.Contains(a.tables, "public.goose_db_version") {
		return nil, fmt.Errorf("%s is a pg_dump archive but not of a gridmap database (it has no goose_db_version table)", path)
	}
	var err error
	if a.version, err = archiveSchemaVersion(ctx, pgRestore, env, path); err != nil {
		return nil, err
	}
	if latest := LatestSchemaVersion(); a.version > latest {
		return nil, fmt.Errorf("%s holds schema version %d, and this gridmap knows versions up to %d only: the backup was made by a newer gridmap, so restore it with that version (or a newer one); nothing was changed", path, a.version, latest)
	}
	return a, nil
}

// archiveSchemaVersion reads the schema version an archive was made at:
// the newest applied version in its goose_db_version rows, which
// pg_restore writes out as COPY text without connecting anywhere.
func archiveSchemaVersion(ctx context.Context, pgRestore string, env []string, path string) (int64, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore, "--data-only", "--table=goose_db_version", "--file=-", path)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s is not a readable pg_dump archive (%s): give a backup made by gridmap backup", path, lastLines(stderr.String(), 3))
	}
	v, ok := copySchemaVersion(out.String())
	if !ok {
		return 0, fmt.Errorf("%s has no readable schema version (the rows of its goose_db_version table): give a backup made by gridmap backup", path)
	}
	return v, nil
}

// copyHeader matches the COPY line pg_restore writes before a table's rows:
// "COPY public.goose_db_version (id, version_id, is_applied, tstamp) FROM stdin;".
var copyHeader = regexp.MustCompile(`^COPY \S*goose_db_version \(([^)]*)\) FROM stdin;$`)

// copySchemaVersion reads the newest applied version_id from the
// goose_db_version rows of a plain-text dump; ok is false when there is
// no such table or no applied row.
func copySchemaVersion(dump string) (version int64, ok bool) {
	lines := strings.Split(dump, "\n")
	for i, line := range lines {
		m := copyHeader.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		columns := strings.Split(m[1], ", ")
		vCol, appliedCol := slices.Index(columns, "version_id"), slices.Index(columns, "is_applied")
		if vCol < 0 || appliedCol < 0 {
			return 0, false
		}
		for _, row := range lines[i+1:] {
			if row == `\.` {
				break
			}
			fields := strings.Split(row, "\t")
			if len(fields) != len(columns) || fields[appliedCol] != "t" {
				continue
			}
			if v, err := strconv.ParseInt(fields[vCol], 10, 64); err == nil && (!ok || v > version) {
				version, ok = v, true
			}
		}
		return version, ok
	}
	return 0, false
}

// checkRestoreTarget refuses, saying what it found, a database that:
//   - other sessions are using (a running gridmap serve);
//   - holds tables but no gridmap schema (no goose_db_version): another
//     program's database;
//   - holds a gridmap schema newer than the archive's (version), whatever
//     replace: --clean drops only the archive's own tables, and the newer
//     ones left beside the restored schema would break its migrations;
//   - holds a gridmap schema, with data or not, unless replace;
//   - holds tables the archive lacks, which --clean would leave behind.
func checkRestoreTarget(ctx context.Context, q querier, archived []string, version int64, replace bool) error {
	var others int
	const sessions = `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	if err := q.QueryRow(ctx, sessions).Scan(&others); err != nil {
		return fmt.Errorf("reading the database's sessions: %w", err)
	}
	if others > 0 {
		return fmt.Errorf("%d other sessions are connected to the database (a running gridmap serve?): stop them before restoring", others)
	}
	tables, err := userTables(ctx, q)
	if err != nil || len(tables) == 0 {
		return err
	}
	if !slices.Contains(tables, "public.goose_db_version") {
		return fmt.Errorf("the database holds %d tables (%s) but no gridmap schema (no goose_db_version table): it is not a gridmap database; restore into an empty database (a new --data directory, or a newly created database in DATABASE_URL)", len(tables), listSome(tables, 5))
	}
	var current int64
	if err := q.QueryRow(ctx, "SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied").Scan(&current); err != nil {
		return fmt.Errorf("reading the database's schema version: %w", err)
	}
	if current > version {
		return fmt.Errorf("the database holds gridmap schema version %d, newer than the backup's %d: restoring would leave the newer tables beside the backup's; restore into an empty database (a new --data directory, or a newly created database in DATABASE_URL); gridmap restore then migrates it", current, version)
	}
	filled, err := tablesWithRows(ctx, q, tables)
	if err != nil {
		return err
	}
	found := fmt.Sprintf("gridmap schema version %d with no data (every table empty)", current)
	if len(filled) > 0 {
		found = fmt.Sprintf("gridmap schema version %d with data in %d tables (%s)", current, len(filled), listSome(filled, 5))
	}
	if !replace {
		return fmt.Errorf("the database already holds %s: restoring would mix two databases; add --replace to drop the backup's tables there and restore it (schema version %d) in their place", found, version)
	}
	var extra []string
	for _, t := range tables {
		if !slices.Contains(archived, t) {
			extra = append(extra, t)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("the database holds %s and tables the backup lacks (%s), which --replace would leave behind: restore into an empty database (a new --data directory, or a newly created database in DATABASE_URL)", found, strings.Join(extra, ", "))
	}
	return nil
}

// tablesWithRows lists the tables (schema.name) that hold a row, other
// than goose_db_version, which every migrated database fills.
func tablesWithRows(ctx context.Context, q querier, tables []string) ([]string, error) {
	var filled []string
	for _, t := range tables {
		if t == "public.goose_db_version" {
			continue
		}
		schema, name, _ := strings.Cut(t, ".")
		var has bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+pgx.Identifier{schema, name}.Sanitize()+")").Scan(&has); err != nil {
			return nil, fmt.Errorf("reading table %s: %w", t, err)
		}
		if has {
			filled = append(filled, t)
		}
	}
	return filled, nil
}

// listSome joins the first n names, saying how many more there are.
func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// userTables lists the tables of the database that belong to no extension
// (PostGIS's spatial_ref_sys does), as schema.name; partitions are left out,
// as they go with their table.
func userTables(ctx context.Context, q querier) ([]string, error) {
	const tablesSQL = `
		SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d
		                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1`
	rows, err := q.Query(ctx, tablesSQL)
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
// restored; gridmap adds none.) Partitions' keys come before the other
// constraints (partitionKeysFirst). Returns the file's path.
func restoreList(ctx context.Context, q querier, list []byte) (string, error) {
	installed := map[string]bool{}
	rows, err := q.Query(ctx, installedSQL)
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
	var kept []string
	for _, line := range strings.SplitAfter(string(list), "\n") {
		if m := tocExtension.FindStringSubmatch(line); m != nil && (installed[m[1]] || strings.Contains(line, " COMMENT - ")) {
			continue
		}
		if m := tocTableData.FindStringSubmatch(line); m != nil && installed[m[1]+"."+m[2]] {
			continue
		}
		kept = append(kept, line)
	}
	f, err := os.CreateTemp("", "gridmap-restore-*.list")
	if err != nil {
		return "", fmt.Errorf("writing pg_restore's list: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(partitionKeysFirst(kept), "")); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing pg_restore's list: %w", err)
	}
	return f.Name(), nil
}

// tocAttach matches a partition attached to its table in pg_restore
// --list, "4379; 0 0 TABLE ATTACH public track_points_20261201 gridmap";
// tocConstraint a constraint, "4839; 2606 125877 CONSTRAINT public
// track_points_20261201 track_points_20261201_pkey gridmap" (schema,
// table).
var (
	tocAttach     = regexp.MustCompile(`^\d+; \d+ \d+ TABLE ATTACH (\S+) (\S+) `)
	tocConstraint = regexp.MustCompile(`^\d+; \d+ \d+ CONSTRAINT (\S+) (\S+) `)
)

// partitionKeysFirst moves, in the lines of pg_restore --list, the
// constraints of partitions (their parts of their table's primary key)
// before the first constraint. pg_restore --clean drops in the reverse of
// the list's order, and a partition's part of a key cannot be dropped
// while its table's key is there: dropped first, the table's key takes its
// partitions' with it. Created first, each partition's part is attached
// to its table's key (INDEX ATTACH) after both exist, as before.
func partitionKeysFirst(lines []string) []string {
	partitions := map[string]bool{}
	for _, line := range lines {
		if m := tocAttach.FindStringSubmatch(line); m != nil {
			partitions[m[1]+"."+m[2]] = true
		}
	}
	var keys, rest []string
	first := -1
	for _, line := range lines {
		m := tocConstraint.FindStringSubmatch(line)
		if m != nil && first < 0 {
			first = len(rest)
		}
		if m != nil && partitions[m[1]+"."+m[2]] {
			keys = append(keys, line)
			continue
		}
		rest = append(rest, line)
	}
	if first < 0 {
		return lines
	}
	return slices.Concat(rest[:first], keys, rest[first:])
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
