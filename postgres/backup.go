package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	pgDump, env, _, err := tool(ctx, db.Pool, "pg_dump", connString)
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

// tool finds the PostgreSQL program name (pg_dump, pg_restore) of the
// server's major version, which reads and writes what that server does,
// and the environment that points it at connString without putting the
// password on its command line, with the name of the database.
func tool(ctx context.Context, q querier, name, connString string) (path string, env []string, dbName string, err error) {
	var num int
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
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
// own pool settings, which libpq rejects) into the libpq environment of
// pg_dump and pg_restore. They connect where gridmap itself does: to the
// host, port, user, password and database pgx resolved (from connString,
// then the PG* variables and service file, as libpq would), passed
// explicitly. Every other PG* variable of the environment is left out, as
// one (PGSERVICE, PGOPTIONS, PGDATABASE...) could point the tools
// elsewhere; only the TLS settings pgx itself took from the environment
// (PGSSLMODE...) are passed on when connString has none, as they cannot
// redirect anything.
func toolEnv(connString string) (env []string, dbName string, err error) {
	c, err := pgconn.ParseConfig(connString)
	if err != nil {
		return nil, "", fmt.Errorf("database address: %w", err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	env = append(env, "PGAPPNAME=gridmap", "PGCONNECT_TIMEOUT=30", "PGHOST="+c.Host, "PGPORT="+strconv.Itoa(int(c.Port)),
		"PGUSER="+c.User, "PGDATABASE="+c.Database)
	if c.Password != "" {
		env = append(env, "PGPASSWORD="+c.Password)
	}
	ssl := map[string]string{}
	for _, m := range sslParams.FindAllStringSubmatch(connString, -1) {
		ssl[m[1]] = strings.Trim(m[2], `'`)
	}
	for _, name := range []string{"sslmode", "sslrootcert", "sslcert", "sslkey"} {
		v, ok := ssl[name]
		if !ok {
			v = os.Getenv("PG" + strings.ToUpper(name))
		}
		if v != "" {
			env = append(env, "PG"+strings.ToUpper(name)+"="+v)
		}
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
