package postgres

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DatabaseName is the database gridmap keeps its data in, in a managed cluster.
const DatabaseName = "gridmap"

// superuser is the cluster's bootstrap role, whatever the OS user is.
const superuser = "gridmap"

// socketPathMax leaves room under the kernel's 108-byte limit on unix socket
// paths for the "/.s.PGSQL.5432" PostgreSQL appends to the directory.
const socketPathMax = 90

// Cluster is a PostgreSQL cluster gridmap runs itself under a data directory:
// the cluster in DIR/pg, its log in DIR/postgres.log, its unix socket in
// DIR/run (or a short directory under /tmp when DIR's path is too long for a
// socket). It listens on no TCP port. When gridmap runs as root the cluster
// runs as the postgres user.
//
// Several gridmap processes may use one cluster (a server and an import, or
// the test binaries of several packages): each holds a shared lock on
// DIR/.in-use while it uses the cluster, and the cluster is stopped only by a
// process that can take that lock exclusively.
type Cluster struct {
	Dir    string
	Logger *slog.Logger
	// Throwaway turns off fsync for clusters whose data may be lost (tests).
	Throwaway bool

	binDir    string
	socketDir string
	owner     *osUser // set when running as root: the user the cluster runs as
	inUse     *os.File
	started   bool
}

type osUser struct{ uid, gid int }

// NewCluster prepares a cluster under dir without starting it. Returns an
// error naming the Debian packages to install when PostgreSQL or PostGIS is
// missing.
func NewCluster(dir string, logger *slog.Logger) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dir, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{Dir: abs, Logger: logger}
	if c.binDir, err = findBinDir(); err != nil {
		return nil, err
	}
	if err := checkPostGIS(c.binDir); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, the managed PostgreSQL cluster runs as the postgres user, which does not exist: install the Debian package postgresql-15 (it creates the user) or run gridmap as another user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.owner = &osUser{uid: uid, gid: gid}
	}
	c.socketDir = filepath.Join(abs, "run")
	if len(c.socketDir) > socketPathMax {
		sum := sha1.Sum([]byte(abs))
		c.socketDir = filepath.Join(os.TempDir(), "gridmap-"+hex.EncodeToString(sum[:6]))
	}
	return c, nil
}

const packagesHint = "install the Debian packages postgresql-15 and postgresql-15-postgis-3 (apt-get install postgresql-15 postgresql-15-postgis-3), or set DATABASE_URL to a PostgreSQL database with PostGIS"

// findBinDir finds initdb, pg_ctl and postgres: pg_config --bindir first,
// then the newest /usr/lib/postgresql/*/bin.
func findBinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return majorOf(found[i]) > majorOf(found[j]) })
	candidates = append(candidates, found...)
	for _, dir := range candidates {
		ok := true
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				ok = false
			}
		}
		if ok {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: %s", packagesHint)
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// checkPostGIS looks for the PostGIS extension beside the server binaries
// (Debian: /usr/lib/postgresql/15/bin -> /usr/share/postgresql/15/extension).
func checkPostGIS(binDir string) error {
	major := majorOf(binDir)
	if major == 0 {
		return nil // not a Debian layout; CREATE EXTENSION will say if it is missing
	}
	control := fmt.Sprintf("/usr/share/postgresql/%d/extension/postgis.control", major)
	if _, err := os.Stat(control); err != nil {
		return fmt.Errorf("PostGIS is not installed for PostgreSQL %d (%s is missing): install the Debian package postgresql-%d-postgis-3", major, control, major)
	}
	return nil
}

func (c *Cluster) pgData() string  { return filepath.Join(c.Dir, "pg") }
func (c *Cluster) logFile() string { return filepath.Join(c.Dir, "postgres.log") }

// ConnString returns the libpq connection string for database db.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=%s dbname=%s sslmode=disable", c.socketDir, superuser, db)
}

// Start makes the cluster usable: it takes this process's shared lock,
// creates the cluster on first use, recovers from a killed run, starts it
// unless it is already running, and makes sure the gridmap database exists
// with PostGIS. Started reports whether this call started it.
func (c *Cluster) Start(ctx context.Context) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	if c.owner != nil {
		if err := c.grantPassage(); err != nil {
			return err
		}
	}
	inUse, err := os.OpenFile(filepath.Join(c.Dir, ".in-use"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening cluster lock: %w", err)
	}
	if err := flock(ctx, inUse, syscall.LOCK_SH); err != nil {
		inUse.Close()
		return err
	}
	c.inUse = inUse

	// Only one process initialises or starts the cluster at a time.
	startLock, err := os.OpenFile(filepath.Join(c.Dir, ".starting"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening cluster lock: %w", err)
	}
	defer startLock.Close()
	if err := flock(ctx, startLock, syscall.LOCK_EX); err != nil {
		return err
	}
	if err := c.initIfNeeded(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(clusterFoundWait)
	for {
		if running, err := c.running(); err != nil {
			return err
		} else if !running {
			if err := c.start(ctx); err != nil {
				return err
			}
			c.started = true
		}
		connectBy := deadline
		if c.started { // after pg_ctl's wait, which recovery may have made long
			connectBy = time.Now().Add(clusterFoundWait)
		}
		err := c.ensureDatabase(ctx, connectBy)
		var connect *pgconn.ConnectError
		if err == nil || c.started || !errors.As(err, &connect) || time.Now().After(deadline) {
			return err
		}
		// Found running but not answering: a postmaster killed a moment
		// ago is still exiting (it resets the connection). Look again.
		c.Logger.Warn("managed PostgreSQL found running does not answer; looking again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// clusterFoundWait is how long Start keeps looking at a cluster found
// running that does not take connections (a quarter of a second apart),
// while it holds the start lock, before it gives up.
const clusterFoundWait = 10 * time.Second

// Started reports whether this process started the cluster.
func (c *Cluster) Started() bool { return c.started }

// Release ends this process's use of the cluster. With stop, the cluster is
// stopped (fast shutdown: sessions end, committed data is kept) unless
// another gridmap process is still using it.
func (c *Cluster) Release(stop bool) error {
	if c.inUse == nil {
		return nil
	}
	defer func() { c.inUse.Close(); c.inUse = nil }()
	if !stop {
		return nil
	}
	if err := syscall.Flock(int(c.inUse.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		c.Logger.Info("managed PostgreSQL left running: another gridmap process is using it", "dir", c.Dir)
		return nil
	}
	return c.Stop()
}

// Stop stops the cluster if it runs.
func (c *Cluster) Stop() error {
	if running, _ := c.running(); !running {
		return nil
	}
	c.Logger.Info("stopping managed PostgreSQL", "dir", c.pgData())
	pid, _, _ := readPostmasterPID(filepath.Join(c.pgData(), "postmaster.pid"))
	out, err := c.command(context.Background(), "pg_ctl", "-D", c.pgData(), "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("stopping PostgreSQL: %w: %s", err, strings.TrimSpace(string(out)))
	}
	// pg_ctl returns once postmaster.pid is gone, a moment before the
	// postmaster has exited; wait for that too, so that nothing of the
	// cluster outlives the command that stopped it.
	for deadline := time.Now().Add(10 * time.Second); pid > 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
	}
	return nil
}

// NewStandby copies the running cluster c to a streaming replica under dir
// (pg_basebackup, with the settings that make it follow c), not started:
// Start it like any cluster, and give its ConnString as gridmap serve
// --replica-url. For trying replicas on one machine and for tests; a
// replica on another machine is made the same way by its operators.
func (c *Cluster) NewStandby(ctx context.Context, dir string) (*Cluster, error) {
	s, err := NewCluster(dir, c.Logger)
	if err != nil {
		return nil, err
	}
	s.Throwaway = c.Throwaway
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the replica's directory: %w", err)
	}
	if s.owner != nil {
		if err := s.grantPassage(); err != nil {
			return nil, err
		}
	}
	if err := s.mkdirOwned(s.pgData(), 0o700); err != nil {
		return nil, err
	}
	out, err := s.command(ctx, "pg_basebackup", "-D", s.pgData(), "-R", "-X", "stream", "-c", "fast",
		"-h", c.socketDir, "-U", superuser).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pg_basebackup: %w: %s", err, lastLines(string(out), 5))
	}
	return s, nil
}

func (c *Cluster) initIfNeeded(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.pgData(), "PG_VERSION")); err == nil {
		return nil
	}
	c.Logger.Info("creating managed PostgreSQL cluster", "dir", c.pgData())
	if err := c.mkdirOwned(c.pgData(), 0o700); err != nil {
		return err
	}
	out, err := c.command(ctx, "initdb", "-D", c.pgData(), "-U", superuser, "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=reject").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(string(out), 5))
	}
	conf := filepath.Join(c.pgData(), "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("configuring cluster: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString("\n# Settings gridmap writes at every start.\ninclude_if_exists = 'gridmap.conf'\n")
	return err
}

// running reports whether the cluster's postmaster is alive, and points the
// socket at the directory it is listening in. A postmaster.pid left by a
// killed server is removed, and orphaned backends are waited for.
func (c *Cluster) running() (bool, error) {
	pidFile := filepath.Join(c.pgData(), "postmaster.pid")
	pid, sockDir, err := readPostmasterPID(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, c.waitOrphans()
	} else if err != nil {
		c.Logger.Warn("unreadable postmaster.pid, removing it", "err", err)
		return false, c.removeStale(pidFile)
	}
	if c.isOurs(pid) {
		if sockDir != "" {
			c.socketDir = sockDir
		}
		return true, nil
	}
	waitExit(pid, 10*time.Second) // a postmaster killed a moment ago may still be exiting
	c.Logger.Warn("removing lock files left by a PostgreSQL that is no longer running", "pid", pid)
	if err := c.removeStale(pidFile); err != nil {
		return false, err
	}
	// The socket lock names the dead postmaster too; a zombie that nobody
	// reaps would keep PostgreSQL from ever taking it back.
	for _, dir := range []string{sockDir, c.socketDir} {
		if dir != "" {
			if err := c.removeStale(filepath.Join(dir, ".s.PGSQL.5432.lock")); err != nil {
				return false, err
			}
		}
	}
	return false, c.waitOrphans()
}

// waitExit waits until pid has exited or is a zombie, or the time is up.
func waitExit(pid int, limit time.Duration) {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if alive, zombie := processState(pid); !alive || zombie {
			return
		}
	}
}

// processState reports whether pid exists and whether it is a zombie
// (exited, not yet reaped by its parent).
func processState(pid int) (alive, zombie bool) {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true, false
	}
	// The state follows the command name, which is in parentheses.
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return true, b[i+2] == 'Z'
	}
	return true, false
}

func (c *Cluster) removeStale(pidFile string) error {
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale postmaster.pid: %w", err)
	}
	return nil
}

// isOurs reports whether pid is a live process working in this cluster's
// directory (every PostgreSQL process runs with the data directory as its
// working directory).
func (c *Cluster) isOurs(pid int) bool {
	if alive, zombie := processState(pid); !alive || zombie {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false // not ours to read: another user's process, so not our postmaster
	}
	want, _ := filepath.EvalSymlinks(c.pgData())
	return cwd == want || cwd == c.pgData()
}

// waitOrphans waits for backends of a killed postmaster to exit (they do once
// they notice), killing them after a few seconds: PostgreSQL refuses to start
// while they hold its shared memory.
func (c *Cluster) waitOrphans() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := c.clusterProcesses()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			c.Logger.Warn("killing orphaned PostgreSQL processes", "pids", pids)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			time.Sleep(200 * time.Millisecond)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) clusterProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want, _ := filepath.EvalSymlinks(c.pgData())
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, zombie := processState(pid); zombie {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (c *Cluster) start(ctx context.Context) error {
	if err := c.mkdirOwned(c.socketDir, 0o700); err != nil {
		return err
	}
	settings := fmt.Sprintf("listen_addresses = ''\nport = 5432\nunix_socket_directories = '%s'\nunix_socket_permissions = 0700\n",
		strings.ReplaceAll(c.socketDir, "'", "''"))
	if c.Throwaway {
		settings += "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n"
	}
	if err := c.writeOwned(filepath.Join(c.pgData(), "gridmap.conf"), settings); err != nil {
		return err
	}
	if err := c.writeOwnedIfMissing(c.logFile()); err != nil {
		return err
	}
	c.Logger.Info("starting managed PostgreSQL", "dir", c.pgData(), "socket", c.socketDir)
	cmd := c.command(ctx, "pg_ctl", "-D", c.pgData(), "-l", c.logFile(), "-w", "-t", "120", "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("starting PostgreSQL: %w: %s\n%s", err, strings.TrimSpace(string(out)), tail(c.logFile(), 8))
	}
	return nil
}

// ensureDatabase connects by deadline (a postmaster found running may be
// stopped or hung, and would hold the start for good) and creates the
// gridmap database unless it exists.
func (c *Cluster) ensureDatabase(ctx context.Context, deadline time.Time) error {
	connectCtx, cancel := context.WithDeadline(ctx, deadline)
	conn, err := pgx.Connect(connectCtx, c.ConnString("postgres"))
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to managed PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DatabaseName).Scan(&exists); err != nil {
		return fmt.Errorf("checking database: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DatabaseName}.Sanitize()); err != nil {
			return fmt.Errorf("creating database: %w", err)
		}
	}
	return nil
}

// command runs a PostgreSQL binary as the cluster's owner, in its own
// process group so a Ctrl-C at the terminal reaches gridmap (which then shuts
// down in order) and not PostgreSQL directly.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.owner != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.owner.uid), Gid: uint32(c.owner.gid)}
		cmd.Env = append(cmd.Env, "HOME="+c.Dir)
	}
	return cmd
}

func (c *Cluster) mkdirOwned(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return err
	}
	return c.chown(dir)
}

func (c *Cluster) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return c.chown(path)
}

func (c *Cluster) writeOwnedIfMissing(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return c.chown(path)
}

func (c *Cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	if err := os.Lchown(path, c.owner.uid, c.owner.gid); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", path, err)
	}
	return nil
}

// grantPassage lets the postgres user reach the data directory: every
// ancestor it cannot traverse gets the execute bit for others (not read, so
// nothing is listed), and the change is logged.
func (c *Cluster) grantPassage() error {
	for dir := c.Dir; ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			c.Logger.Warn("letting the postgres user pass through a directory to reach the managed cluster (chmod o+x)", "dir", dir)
			if err := os.Chmod(dir, info.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("the postgres user cannot reach %s and it could not be opened for it: %w; choose a --data directory it can reach", c.Dir, err)
			}
		}
		if dir == "/" {
			return nil
		}
	}
}

func readPostmasterPID(path string) (pid int, socketDir string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) == 0 {
		return 0, "", fmt.Errorf("empty postmaster.pid")
	}
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return 0, "", fmt.Errorf("postmaster.pid: %w", err)
	}
	if len(lines) >= 5 {
		socketDir = strings.TrimSpace(lines[4])
	}
	return pid, socketDir, nil
}

// flock takes a lock, giving up when ctx ends.
func flock(ctx context.Context, f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
