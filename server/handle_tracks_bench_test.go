package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// trackBenchClients and trackBenchBatch: eight phones' uploads at once,
// 1,000 points a batch.
const (
	trackBenchClients = 8
	trackBenchBatch   = 1000
)

// trackBenchTime is where batch i of a benchmark run starts: each client
// (i % 8) walks its own time line, a batch after the other, a week ago.
func trackBenchTime(base time.Time, i int) time.Time {
	return base.Add(time.Duration(i/trackBenchClients*trackBenchBatch) * time.Second)
}

// trackBenchDays makes the partitions of the days n batches cover, so that
// the intake and the baseline both find them.
func trackBenchDays(b *testing.B, patrols *postgres.PatrolStore, who *gridmap.Caller, base time.Time, n int) {
	end := trackBenchTime(base, n+trackBenchClients)
	for t := base; t.Before(end.Add(24 * time.Hour)); t = t.Add(24 * time.Hour) {
		if _, err := patrols.AddTrack(gridmap.NewContextWithCaller(context.Background(), who),
			&gridmap.TrackBatch{Device: "days", Points: []gridmap.TrackPoint{{T: t, Lon: 70.5, Lat: -30.5}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrackIntakeHTTP posts 1,000-point batches from 8 workers'
// phones at once over loopback, each batch committed durably with the
// workers' positions and live events, and reports points per second.
func BenchmarkTrackIntakeHTTP(b *testing.B) {
	db := pgtest.SharedWith(b, postgres.Options{MaxConns: trackBenchClients})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	access := postgres.NewAccessStore(db)
	go access.Follow(ctx)
	<-access.Listening()
	feed := postgres.NewFeed(db)
	go feed.Run(ctx)
	patrols := postgres.NewPatrolStore(db, shanghai, 0)
	srv := New(Config{}, Deps{Access: access, Patrols: patrols, Feed: feed}, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	cookies := make([][2]string, trackBenchClients)
	var first *gridmap.Caller
	for k := range cookies {
		name := fmt.Sprintf("walker-%s-%d", run, k)
		if err := access.AddAccount(ctx, &gridmap.Account{Username: name, Role: gridmap.RoleReporter}, "correct horse battery"); err != nil {
			b.Fatal(err)
		}
		ses, err := access.SignIn(ctx, name, "correct horse battery", "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		cookies[k] = [2]string{sessionCookie + "=" + ses.Secret, ses.CSRF}
		if first == nil {
			first = ses.Caller
		}
	}
	base := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second)
	trackBenchDays(b, patrols, first, base, b.N)
	bodies := func(i int) []byte {
		pts := make([][4]any, trackBenchBatch)
		start := trackBenchTime(base, i)
		for j := range pts {
			pts[j] = [4]any{70.5 + float64(j)*1e-5, -30.5, start.Add(time.Duration(j) * time.Second).Format(time.RFC3339), 5}
		}
		body, _ := json.Marshal(map[string]any{"device": "phone", "points": pts})
		return body
	}
	client, done := loadClient(trackBenchClients)
	defer done()
	b.ReportMetric(loadTest(b, trackBenchClients, func(i int) error {
		req, _ := http.NewRequest("POST", hs.URL+"/v1/tracks", bytes.NewReader(bodies(i)))
		c := cookies[i%trackBenchClients]
		req.Header.Set("Cookie", c[0])
		req.Header.Set(csrfHeader, c[1])
		req.Header.Set("Content-Type", "application/json")
		return drain(client.Do(req))
	})*trackBenchBatch, "points/s")
}

// BenchmarkTrackCopyBaseline is the baseline: the same rows, 1,000 at a
// time, COPYed bare (text form) into the same table from 8 connections,
// each COPY committed durably.
func BenchmarkTrackCopyBaseline(b *testing.B) {
	db := pgtest.SharedWith(b, postgres.Options{MaxConns: trackBenchClients})
	ctx := context.Background()
	patrols := postgres.NewPatrolStore(db, shanghai, 0)
	access := postgres.NewAccessStore(db)
	name := fmt.Sprintf("copier-%d", time.Now().UnixNano()%1e9)
	a := &gridmap.Account{Username: name, Role: gridmap.RoleReporter}
	if err := access.AddAccount(ctx, a, "correct horse battery"); err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(-7 * 24 * time.Hour).Truncate(time.Second)
	trackBenchDays(b, patrols, &gridmap.Caller{Kind: gridmap.CallerAccount, ID: a.ID, Name: name, Role: a.Role}, base, b.N)
	b.ReportMetric(loadTest(b, trackBenchClients, func(i int) error {
		start := trackBenchTime(base, i)
		var buf bytes.Buffer
		for j := range trackBenchBatch {
			// COPY's text form, points as EWKT.
			fmt.Fprintf(&buf, "%d\tcopy-%d\t%s\tSRID=4326;POINT(%.6f -30.5)\t5\n", a.ID, i%trackBenchClients,
				start.Add(time.Duration(j)*time.Second).Format(time.RFC3339), 70.5+float64(j)*1e-5)
		}
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		_, err = conn.Conn().PgConn().CopyFrom(ctx, &buf, `COPY track_points (account_id, device, t, location, accuracy_m) FROM STDIN`)
		return err
	})*trackBenchBatch, "points/s")
}
