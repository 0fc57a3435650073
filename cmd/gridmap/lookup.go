package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/geo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/server"
)

// runLookup answers one point from the database, for a quick check:
// gridmap lookup [--layer L] [--crs C] [--tolerance-m M] [--accuracy-m M] [--at T] LON LAT.
// It prints the JSON GET /v1/lookup would answer.
func runLookup(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	dataDir := dataFlag(fs)
	layer := fs.String("layer", "", "answer for this layer only (default: every layer)")
	crs := fs.String("crs", gridmap.CRSWGS84, "coordinate system of LON LAT: wgs84, cgcs2000, gcj02 or bd09")
	tolerance := fs.Float64("tolerance-m", -1, "co-owner tolerance in metres (default: each layer's)")
	accuracy := fs.Float64("accuracy-m", 0, "positioning accuracy of the point in metres")
	at := fs.String("at", "", "answer from the boundaries in force at this RFC 3339 time")
	coords, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(coords) != 2 {
		return fmt.Errorf("lookup needs LON LAT, longitude first (for example: gridmap lookup 120.15 30.27)")
	}
	lon, err := strconv.ParseFloat(coords[0], 64)
	if err != nil {
		return fmt.Errorf("longitude %q is not a number", coords[0])
	}
	lat, err := strconv.ParseFloat(coords[1], 64)
	if err != nil {
		return fmt.Errorf("latitude %q is not a number", coords[1])
	}
	if err := gridmap.CheckLonLat(lon, lat); err != nil {
		return fmt.Errorf("%s", gridmap.ErrorMessage(err))
	}
	q := gridmap.LookupQuery{Layer: *layer, AccuracyM: *accuracy}
	if *tolerance >= 0 {
		q.ToleranceM = tolerance
	}
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--at %q must be an RFC 3339 time such as 2026-01-02T15:04:05+08:00", *at)
		}
		q.At = &t
	}
	if q.Lon, q.Lat, err = geo.ToWGS84(*crs, lon, lat); err != nil {
		return fmt.Errorf("%s", gridmap.ErrorMessage(err))
	}

	db, err := openDatabase(ctx, *dataDir, logger)
	if err != nil {
		return err
	}
	defer db.Close(false)
	loc := postgres.NewLocator(db.DB)
	if q.At == nil {
		if err := loc.Load(ctx); err != nil {
			return err
		}
	}
	var ans gridmap.LookupAnswer
	if err := loc.Lookup(ctx, q, &ans); err != nil {
		if code := gridmap.ErrorCode(err); code != gridmap.EINTERNAL {
			return fmt.Errorf("%s", gridmap.ErrorMessage(err))
		}
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, server.AppendLookupJSON(nil, &ans, lon, lat, *crs), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = stdout.Write(out.Bytes())
	return err
}
