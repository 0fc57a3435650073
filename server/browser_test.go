package server

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// browserTimeout bounds one browser test script, browser start included.
const browserTimeout = 6 * time.Minute

// runBrowser runs the browser test script browser/<script> with node
// against the server at baseURL (GRIDMAP_URL), with env ("NAME=value") added
// to the environment. The script's output goes to t.Log line by line; the
// test fails with its output when it exits non-zero or runs past
// browserTimeout. Without node, chromium or browser/node_modules it fails
// and says to run make test-deps: a browser test is never skipped.
func runBrowser(t *testing.T, script string, baseURL string, env ...string) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("browser test %s needs node (Node.js): %v; run make test-deps", script, err)
	}
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("browser test %s needs chromium: %v; run make test-deps (or set CHROMIUM)", script, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("browser test %s needs playwright-core in browser/node_modules: %v; run make test-deps", script, err)
	}
	if _, err := os.Stat(filepath.Join(dir, script)); err != nil {
		t.Fatalf("no browser test script: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GRIDMAP_URL="+baseURL, "CHROMIUM="+chromium)
	cmd.Env = append(cmd.Env, env...)
	// node starts chromium: on timeout, end the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &lineLogger{t: t, prefix: script + ": "}
	cmd.Stdout = out
	cmd.Stderr = out
	start := time.Now()
	err = cmd.Run()
	if cmd.Process != nil {
		// Whatever the script left behind (a chromium after a crash) ends too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out.flush()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("browser test %s ran past %v and was stopped; the end of its output (all of it is logged above):\n%s", script, browserTimeout, out.tail(40))
	}
	if err != nil {
		t.Fatalf("browser test %s failed (%v) after %v; the end of its output (all of it is logged above):\n%s", script, err, time.Since(start).Round(time.Millisecond), out.tail(40))
	}
}

// lineLogger passes a process's output to t.Log one line at a time, and
// keeps all of it for the failure message.
type lineLogger struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    bytes.Buffer // the unfinished line
	whole  strings.Builder
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.whole.Write(p)
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			// No newline yet: keep the start of the line for the next write.
			l.buf.Reset()
			l.buf.WriteString(line)
			return len(p), nil
		}
		l.t.Log(l.prefix + strings.TrimRight(line, "\r\n"))
	}
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.t.Log(l.prefix + l.buf.String())
		l.buf.Reset()
	}
}

// tail is the last n lines of the output.
func (l *lineLogger) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.whole.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
