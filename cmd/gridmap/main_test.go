package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

var binary string

// TestMain builds the real program once; the tests run it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gridmap-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gridmap")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building gridmap: %v\n%s", err, out)
		os.Exit(1)
	}
	http.DefaultTransport = &adminTransport{base: http.DefaultTransport}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// adminTransport sends the tests' requests to a served gridmap with that
// server's admin token, unless they carry credentials of their own.
type adminTransport struct{ base http.RoundTripper }

// adminTokens maps a served gridmap's host to an admin token made for it
// with `gridmap token create`.
var adminTokens sync.Map

func (t *adminTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if token, ok := adminTokens.Load(req.URL.Host); ok && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+token.(string))
	}
	return t.base.RoundTrip(req)
}

type server struct {
	cmd    *exec.Cmd
	env    []string
	data   string
	url    string
	stderr *strings.Builder
	done   chan error
	lines  chan string
}

// startServe runs `gridmap serve` on a free port and waits for the URL it prints.
func startServe(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	return startServeEnv(t, withoutDatabaseURL(), dataDir, args...)
}

func startServeEnv(t *testing.T, env []string, dataDir string, args ...string) *server {
	t.Helper()
	s := launchServe(t, env, dataDir, args...)
	s.waitReady(t)
	return s
}

// launchServe starts `gridmap serve` without waiting for it.
func launchServe(t *testing.T, env []string, dataDir string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir}, args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, env: env, data: dataDir, stderr: &strings.Builder{}, done: make(chan error, 1), lines: make(chan string, 16)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no-op once it has exited
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case s.lines <- sc.Text():
			default:
			}
		}
		s.done <- cmd.Wait()
	}()
	return s
}

// waitReady waits for the URL serve prints once it is ready.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	select {
	case line := <-s.lines:
		const prefix = "gridmap serving at "
		if !strings.HasPrefix(line, prefix) {
			t.Fatalf("unexpected first line %q", line)
		}
		s.url = strings.TrimPrefix(line, prefix)
		s.adminToken(t)
	case err := <-s.done:
		t.Fatalf("serve exited before serving: %v\n%s", err, s.stderr)
	case <-time.After(3 * time.Minute):
		_ = s.cmd.Process.Kill()
		t.Fatalf("serve did not start in time\n%s", s.stderr)
	}
}

// adminToken makes an admin token with `gridmap token create` on the
// server's database, for the tests' requests to it.
func (s *server) adminToken(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binary, "token", "create", "--role", "admin", "--name", fmt.Sprintf("test-admin-%d", time.Now().UnixNano()), "--data", s.data)
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gridmap token create: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	token := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(token, "gmt_") {
		t.Fatalf("gridmap token create printed %q last", token)
	}
	host := strings.TrimPrefix(s.url, "http://")
	adminTokens.Store(host, token)
	t.Cleanup(func() { adminTokens.Delete(host) })
}

func (s *server) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		_ = s.cmd.Process.Kill()
		t.Fatalf("serve did not exit after %v\n%s", sig, s.stderr)
	}
}

func withoutDatabaseURL() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "DATABASE_URL=") {
			env = append(env, e)
		}
	}
	return env
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, b)
		}
	}
	return res.StatusCode
}

// postgresOf lists the live processes working in the cluster directory.
func postgresOf(dataDir string) []int {
	want, _ := filepath.EvalSymlinks(filepath.Join(dataDir, "pg"))
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

func layerCounts(t *testing.T, url string) map[string]map[string]int {
	t.Helper()
	var body struct{ Layers []gridmap.Layer }
	if status := getJSON(t, url+"/v1/layers", &body); status != 200 {
		t.Fatalf("GET /v1/layers: %d", status)
	}
	out := map[string]map[string]int{}
	for _, l := range body.Layers {
		out[l.ID] = l.Counts
	}
	return out
}

func TestServeLifecycle(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")

	s := startServe(t, dataDir, "--demo")
	if status := getJSON(t, s.url+"/readyz", nil); status != 200 {
		t.Fatalf("readyz %d", status)
	}
	counts := layerCounts(t, s.url)
	if counts["demo"]["grid"] < 400 || counts["demo"]["microgrid"] < 2000 || counts["demo-police"]["beat"] == 0 {
		t.Fatalf("demo layers not served: %v", counts)
	}
	if res, err := http.Get(s.url + "/"); err != nil || res.StatusCode != 200 {
		t.Fatalf("start page: %v %v", res, err)
	}

	t.Run("SIGTERM leaves no PostgreSQL behind", func(t *testing.T) {
		s.stop(t, syscall.SIGTERM)
		if pids := postgresOf(dataDir); len(pids) != 0 {
			t.Fatalf("PostgreSQL processes left after SIGTERM: %v", pids)
		}
	})

	t.Run("a second start finds the data", func(t *testing.T) {
		s := startServe(t, dataDir)
		defer s.stop(t, syscall.SIGTERM)
		if c := layerCounts(t, s.url); c["demo"]["microgrid"] != counts["demo"]["microgrid"] {
			t.Errorf("after restart: %v", c)
		}
	})

	t.Run("kill -9 of the server, then a start recovers", func(t *testing.T) {
		s := startServe(t, dataDir)
		s.stop(t, syscall.SIGKILL)
		// PostgreSQL outlives a killed server; the next start adopts it.
		s = startServe(t, dataDir)
		if status := getJSON(t, s.url+"/readyz", nil); status != 200 {
			t.Errorf("readyz after recovery: %d", status)
		}
		s.stop(t, syscall.SIGTERM)
		if pids := postgresOf(dataDir); len(pids) != 0 {
			t.Fatalf("PostgreSQL processes left: %v", pids)
		}
	})

	t.Run("kill -9 of server and PostgreSQL, then a start recovers", func(t *testing.T) {
		s := startServe(t, dataDir)
		s.stop(t, syscall.SIGKILL)
		for _, pid := range postgresOf(dataDir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		s = startServe(t, dataDir)
		defer s.stop(t, syscall.SIGTERM)
		if c := layerCounts(t, s.url); c["demo"]["microgrid"] != counts["demo"]["microgrid"] {
			t.Errorf("after crash recovery: %v", c)
		}
	})
}

// runGridmap runs a subcommand and returns its stdout and exit status.
func runGridmap(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = withoutDatabaseURL()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code > 1 {
		t.Logf("stderr of gridmap %v:\n%s", args, stderr.String())
	}
	return stdout.String(), code
}

func TestImportCommand(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	file := filepath.Join(t.TempDir(), "bad.geojson")
	sq := func(x float64) string {
		return fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,0],[%g,0],[%g,1],[%g,1],[%g,0]]]}`, x, x+1, x+1, x, x)
	}
	features := []string{
		`{"type":"Feature","properties":{"id":"A","up":null},"geometry":` + sq(0) + `}`,
		`{"type":"Feature","properties":{"id":"B","up":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]}}`,
		`{"type":"Feature","properties":{"id":"C","up":"Z"},"geometry":` + sq(0) + `}`,
		`{"type":"Feature","properties":{"id":"D","up":"A"},"geometry":` + sq(0) + `}`,
	}
	// The parent is its own level; write it as a text sequence, one feature per line.
	if err := os.WriteFile(file, []byte(strings.Join(features[1:], "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	parentFile := filepath.Join(t.TempDir(), "parent.geojson")
	if err := os.WriteFile(parentFile, []byte(`{"type":"FeatureCollection","features":[`+features[0]+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runGridmap(t, "import", "--data", dataDir, "--layer", "cli", "--levels", "area,block", "--level", "area",
		"--code-field", "id", "--parent-field", "up", parentFile)
	if code != 0 || !strings.Contains(out, "1 created") {
		t.Fatalf("parent import: exit %d\n%s", code, out)
	}

	t.Run("bad features: nothing imported, each reported, non-zero exit", func(t *testing.T) {
		out, code := runGridmap(t, "import", file, "--data", dataDir, "--layer", "cli", "--level", "block", "--code-field", "id", "--parent-field", "up")
		if code == 0 {
			t.Fatalf("exit 0 for a file with bad features\n%s", out)
		}
		for _, want := range []string{"feature 0 code B: invalid_geometry", "Self-intersection", "feature 1 code C: unknown_parent", "nothing imported"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("skip-invalid imports the rest", func(t *testing.T) {
		out, code := runGridmap(t, "import", "--data", dataDir, "--layer", "cli", "--level", "block", "--code-field", "id", "--parent-field", "up", "--skip-invalid", file)
		if code == 0 || !strings.Contains(out, "1 created") || !strings.Contains(out, "2 rejected") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("the cluster is left as it was found: stopped", func(t *testing.T) {
		if pids := postgresOf(dataDir); len(pids) != 0 {
			t.Errorf("import left PostgreSQL running: %v", pids)
		}
	})
}

// TestImportNYCCommand runs the README's New York import and reads a tract
// back through a running server.
func TestImportNYCCommand(t *testing.T) {
	nyc := pgtest.NYCDir(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	s := startServe(t, dataDir)
	defer s.stop(t, syscall.SIGTERM)
	steps := [][]string{
		{"--levels", "borough,nta,tract", "--level", "borough", "--code-field", "borocode", "--name-field", "boroname", "L1_boroughs.geojson"},
		{"--level", "nta", "--code-field", "ntacode", "--name-field", "ntaname", "--parent-field", "borocode", "L2_nta2010.geojson"},
		{"--level", "tract", "--code-field", "boroct2010", "--name-field", "ctlabel", "--parent-field", "ntacode", "L3_tracts2010.geojson"},
	}
	for _, st := range steps {
		args := append([]string{"import", "--data", dataDir, "--layer", "nyc", "--make-valid"}, st[:len(st)-1]...)
		out, code := runGridmap(t, append(args, filepath.Join(nyc, st[len(st)-1]))...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", st[len(st)-1], code, out)
		}
	}
	c := layerCounts(t, s.url)["nyc"]
	if c["borough"] != 5 || c["nta"] != 195 || c["tract"] != 2165 {
		t.Errorf("counts %v, want 5 + 195 + 2165", c)
	}
	var tract struct {
		Properties map[string]any
		Geometry   struct{ Coordinates [][][][2]float64 }
	}
	if status := getJSON(t, s.url+"/v1/layers/nyc/grids/1000100", &tract); status != 200 {
		t.Fatalf("tract 1000100: %d", status)
	}
	if tract.Properties["parent"] != "MN99" || tract.Geometry.Coordinates[0][0][0] != [2]float64{-74.043878, 40.690188} {
		t.Errorf("tract 1000100 read back: parent %v, first point %v", tract.Properties["parent"], tract.Geometry.Coordinates[0][0][0])
	}
	if pids := postgresOf(dataDir); len(pids) == 0 {
		t.Error("imports stopped the cluster the running server uses")
	}

	// Times Square: Manhattan (1) > Midtown-Midtown South (MN17) > a tract,
	// from the command line and from the running server, which learnt of
	// the other process's imports by notification.
	type answer struct {
		Layers map[string]struct {
			Chain []struct{ Code, Level string }
		}
	}
	chainOf := func(a answer) string {
		var codes []string
		for _, g := range a.Layers["nyc"].Chain {
			codes = append(codes, g.Code)
		}
		return strings.Join(codes, ">")
	}
	out, code := runGridmap(t, "lookup", "--data", dataDir, "--layer", "nyc", "-73.9855", "40.7580")
	var cli answer
	if code != 0 || json.Unmarshal([]byte(out), &cli) != nil || !strings.HasPrefix(chainOf(cli), "1>MN17>") || len(cli.Layers["nyc"].Chain) != 3 {
		t.Fatalf("gridmap lookup: exit %d\n%s", code, out)
	}
	// The server follows the other process's imports by notification, a
	// moment behind.
	var api answer
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		status := getJSON(t, s.url+"/v1/lookup?layer=nyc&lon=-73.9855&lat=40.7580", &api)
		if status == 200 && chainOf(api) == chainOf(cli) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server lookup %d %q, command line %q", status, chainOf(api), chainOf(cli))
		}
	}
	if _, code := runGridmap(t, "lookup", "--data", dataDir, "-73.9855", "95"); code != 1 {
		t.Errorf("a latitude of 95 exits %d, want 1", code)
	}
}

// TestServeWithDatabaseURL starts two servers together on one database named
// by DATABASE_URL: migrations run once under the advisory lock, both serve,
// and neither starts a PostgreSQL of its own.
func TestServeWithDatabaseURL(t *testing.T) {
	env := append(withoutDatabaseURL(), "DATABASE_URL="+pgtest.ConnString(t))
	dataDir := filepath.Join(t.TempDir(), "unused")
	a, b := launchServe(t, env, dataDir), launchServe(t, env, dataDir)
	a.waitReady(t)
	b.waitReady(t)
	defer a.stop(t, syscall.SIGTERM)
	defer b.stop(t, syscall.SIGTERM)
	for _, s := range []*server{a, b} {
		if status := getJSON(t, s.url+"/readyz", nil); status != 200 {
			t.Errorf("%s/readyz: %d", s.url, status)
		}
		if c := layerCounts(t, s.url); len(c) != 0 {
			t.Errorf("fresh database lists layers %v", c)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "pg")); err == nil {
		t.Error("a managed cluster was created although DATABASE_URL was set")
	}
}
