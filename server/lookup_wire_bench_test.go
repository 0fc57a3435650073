package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/jackc/pgx/v5"
)

// BenchmarkLookupWire sets GET /v1/lookup beside its two baselines, on the
// same points in the same run, at 1 and at 8 connections:
//   - bare: a net/http handler with no echo and no middleware, given the
//     same requests (the caller's token unchecked) and writing the answer
//     bytes gridmap writes (precomputed per point): the floor for any
//     HTTP lookup;
//   - raw: the same bytes from a loop over the socket with no HTTP server,
//     the floor under net/http's on this machine;
//   - postgis: a prepared ST_Covers query from Go over the unix socket, as
//     lookups/s.
//
// The cpu/ cases count the server's own CPU time per request: the load
// generator runs in a child process (this test binary again, see
// TestLookupLoadGenerator), so the process's CPU time over the run is the
// server's alone (its runtime and background goroutines included).
func BenchmarkLookupWire(b *testing.B) {
	env := newLookupBench(b)
	const n = 10_000
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/v1/lookup?layer=tracts&lon=%.6f&lat=%.6f", env.url, env.pts[i][0], env.pts[i][1])
	}
	answers := lookupAnswers(b, env, urls)
	at := func(base string) []string {
		moved := make([]string, n)
		for i, u := range urls {
			moved[i] = base + strings.TrimPrefix(u, env.url)
		}
		return moved
	}
	// The baselines get the same requests as gridmap, the caller's token
	// included, which they do not check.
	sameRequests := func(base string) string {
		host := strings.TrimPrefix(base, "http://")
		adminTokens.Store(host, env.token)
		b.Cleanup(func() { adminTokens.Delete(host) })
		return base
	}
	bareURLs, rawURLs := at(sameRequests(bareLookupServer(b, answers))), at(sameRequests(rawLookupServer(b, answers)))
	sameAnswers(b, urls[:100], bareURLs[:100])
	sameAnswers(b, urls[:100], rawURLs[:100])

	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("get/conns=%d", conns), func(b *testing.B) { getLoad(b, urls, conns, nil) })
		b.Run(fmt.Sprintf("bare/conns=%d", conns), func(b *testing.B) { getLoad(b, bareURLs, conns, nil) })
		b.Run(fmt.Sprintf("raw/conns=%d", conns), func(b *testing.B) { getLoad(b, rawURLs, conns, nil) })
		b.Run(fmt.Sprintf("postgis/conns=%d", conns), func(b *testing.B) { postgisLoad(b, env, conns, n) })
	}
	// The lookup and its encoding alone, in memory, on the same points:
	// what GET costs beyond the floor even with nothing else around it.
	b.Run("index", func(b *testing.B) {
		var ans gridmap.LookupAnswer
		var buf []byte
		i := 0
		for b.Loop() {
			p := env.pts[i%n]
			if err := env.locator.Lookup(context.Background(), gridmap.LookupQuery{Layer: "tracts", Lon: p[0], Lat: p[1]}, &ans); err != nil {
				b.Fatal(err)
			}
			buf = AppendLookupJSON(buf[:0], &ans, p[0], p[1], "")
			i++
		}
	})
	b.Run("cpu/get", func(b *testing.B) { childLoad(b, urls, env.token, 8) })
	b.Run("cpu/bare", func(b *testing.B) { childLoad(b, bareURLs, env.token, 8) })
	b.Run("cpu/raw", func(b *testing.B) { childLoad(b, rawURLs, env.token, 8) })
}

// lookupAnswers is, by each of urls' queries, the answer gridmap gives
// the admin.
func lookupAnswers(b *testing.B, env *lookupBench, urls []string) map[string][]byte {
	b.Helper()
	answers := make(map[string][]byte, len(urls))
	var ans gridmap.LookupAnswer
	for _, u := range urls {
		pu, err := url.Parse(u)
		if err != nil {
			b.Fatal(err)
		}
		v := pu.Query()
		lon, _ := strconv.ParseFloat(v.Get("lon"), 64)
		lat, _ := strconv.ParseFloat(v.Get("lat"), 64)
		if err := env.locator.Lookup(context.Background(), gridmap.LookupQuery{Layer: v.Get("layer"), Lon: lon, Lat: lat}, &ans); err != nil {
			b.Fatal(err)
		}
		answers[pu.RawQuery] = AppendLookupJSON(nil, &ans, lon, lat, "")
	}
	return answers
}

// bareLookupServer serves the answers with nothing else per request than
// net/http's own work.
func bareLookupServer(b *testing.B, answers map[string][]byte) string {
	b.Helper()
	contentType := []string{"application/json"}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.RawQuery]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header()["Content-Type"] = contentType
		w.Write(a)
	}))
	b.Cleanup(hs.Close)
	return hs.URL
}

// rawLookupServer serves the answers with no HTTP server at all: a loop
// per connection reads a request's head, finds the answer by its query
// and writes a status line, two headers and the body in one write. It is
// what any server pays here per request in system calls and scheduling:
// the floor under net/http's.
func rawLookupServer(b *testing.B, answers map[string][]byte) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRaw(c, answers)
		}
	}()
	return "http://" + ln.Addr().String()
}

func serveRaw(c net.Conn, answers map[string][]byte) {
	defer c.Close()
	r := bufio.NewReader(c)
	var out []byte
	for {
		line, err := r.ReadSlice('\n') // GET /v1/lookup?<query> HTTP/1.1
		if err != nil {
			return
		}
		_, target, _ := bytes.Cut(line, []byte(" "))
		target, _, _ = bytes.Cut(target, []byte(" "))
		_, query, _ := bytes.Cut(target, []byte("?"))
		a, ok := answers[string(query)]
		for {
			h, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(h) <= 2 {
				break
			}
		}
		if !ok {
			out = append(out[:0], "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"...)
		} else {
			out = append(out[:0], "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
			out = strconv.AppendInt(out, int64(len(a)), 10)
			out = append(append(out, "\r\n\r\n"...), a...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// sameAnswers fails unless each of a and b's urls answer the same bytes.
func sameAnswers(b *testing.B, a, bs []string) {
	b.Helper()
	client, done := loadClient(1)
	defer done()
	get := func(u string) []byte {
		res, err := client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			b.Fatalf("%s: %d %s", u, res.StatusCode, body)
		}
		return body
	}
	for i := range a {
		if ga, gb := get(a[i]), get(bs[i]); !bytes.Equal(ga, gb) {
			b.Fatalf("the baseline answers differently:\n%s\n%s", ga, gb)
		}
	}
}

// postgisLoad runs the prepared ST_Covers query for the first n points
// from conns goroutines, each on a connection of its own, and reports
// lookups per second.
func postgisLoad(b *testing.B, env *lookupBench, conns, n int) {
	ctx := context.Background()
	conn := make([]*pgx.Conn, conns)
	for i := range conn {
		c, err := env.db.Pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Release()
		conn[i] = c.Conn()
	}
	const q = `SELECT code FROM grids WHERE layer_id = $3 AND geom && ST_SetSRID(ST_MakePoint($1, $2), 4326)
		AND ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) ORDER BY level = 'tract' DESC, code LIMIT 1`
	for _, c := range conn {
		if _, err := c.Prepare(ctx, "cover", q); err != nil {
			b.Fatal(err)
		}
	}
	var next = make(chan int, conns)
	for i := range conns {
		next <- i
	}
	b.ReportMetric(loadTest(b, conns, func(i int) error {
		k := <-next // a connection no other worker holds
		defer func() { next <- k }()
		p := env.pts[i%n]
		// The points as the URLs carry them, to six decimals.
		lon, _ := strconv.ParseFloat(strconv.FormatFloat(p[0], 'f', 6, 64), 64)
		lat, _ := strconv.ParseFloat(strconv.FormatFloat(p[1], 'f', 6, 64), 64)
		var code string
		err := conn[k].QueryRow(ctx, "cover", lon, lat, "tracts").Scan(&code)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		return err
	}), "lookups/s")
}

// childLoad sends b.N GET requests for urls round-robin from a child
// process over conns connections and reports this process's CPU time per
// request (server_us/req) and the requests per second the child saw.
func childLoad(b *testing.B, urls []string, token string, conns int) {
	list := filepath.Join(b.TempDir(), "urls")
	if err := os.WriteFile(list, []byte(strings.Join(urls, "\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLookupLoadGenerator$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GRIDMAP_LOADGEN_URLS="+list, "GRIDMAP_LOADGEN_N="+strconv.Itoa(b.N),
		"GRIDMAP_LOADGEN_CONNS="+strconv.Itoa(conns), "GRIDMAP_LOADGEN_TOKEN="+token)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var cpu0, cpu1 time.Duration
	var rate float64
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 1 && f[0] == "loadgen-start":
			cpu0 = processCPU(b)
		case len(f) == 2 && f[0] == "loadgen-done":
			cpu1 = processCPU(b)
			rate, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if err := cmd.Wait(); err != nil || cpu1 == 0 {
		b.Fatalf("load generator: %v (finished: %t)", err, cpu1 != 0)
	}
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "server_us/req")
	b.ReportMetric(rate, "req/s")
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLookupLoadGenerator is BenchmarkLookupWire's load generator in a
// process of its own; it does nothing unless GRIDMAP_LOADGEN_URLS names a
// file of URLs. It prints "loadgen-start" when it begins sending and
// "loadgen-done <req/s>" when the last answer is read.
func TestLookupLoadGenerator(t *testing.T) {
	list := os.Getenv("GRIDMAP_LOADGEN_URLS")
	if list == "" {
		t.Skip("only as BenchmarkLookupWire's child process")
	}
	raw, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	urls := strings.Split(string(raw), "\n")
	n, _ := strconv.Atoi(os.Getenv("GRIDMAP_LOADGEN_N"))
	conns, _ := strconv.Atoi(os.Getenv("GRIDMAP_LOADGEN_CONNS"))
	auth := "Bearer " + os.Getenv("GRIDMAP_LOADGEN_TOKEN")
	transport := &http.Transport{MaxIdleConnsPerHost: conns}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	fmt.Println("loadgen-start")
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for failed.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				req, err := http.NewRequest(http.MethodGet, urls[i%len(urls)], nil)
				if err == nil {
					req.Header.Set("Authorization", auth)
					err = drain(client.Do(req))
				}
				if err != nil {
					failed.Store(&err)
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
	fmt.Printf("loadgen-done %g\n", float64(n)/time.Since(start).Seconds())
}
