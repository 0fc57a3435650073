package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/hugepage"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/server"
	"github.com/gridmap/gridmap/tiles"
)

func runServe(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", envOr("GRIDMAP_ADDR", "127.0.0.1:8080"), "address to listen on")
	dataDir := dataFlag(fs)
	withDemo := fs.Bool("demo", false, "load the demo district if it is not loaded yet")
	bodyLimit := fs.String("body-limit", "10M", "largest request body, except imports")
	importLimit := fs.String("import-limit", "1G", "largest import body")
	overdueEvery := fs.Duration("overdue-every", 30*time.Second, "how often overdue reports are looked for and escalated")
	tileCacheMB := fs.Int("tile-cache-mb", 256, "memory for cached vector tiles, in megabytes")
	tileBlocksMB := fs.Int("tile-blocks-mb", 128, "memory for the grids that tiles from zoom 14 on are drawn from, in megabytes (0 draws them in PostGIS)")
	timeZone := fs.String("time-zone", envOr("GRIDMAP_TIME_ZONE", dispatch.DefaultTimeZone), "time zone deadlines are counted in")
	requestTimeout := fs.Duration("request-timeout", 30*time.Second, "longest a request may run (imports 30m, the live feed excepted); past it the request answers 503")
	maxConns := fs.String("db-max-conns", envOr("GRIDMAP_DB_MAX_CONNS", "0"),
		fmt.Sprintf("most database connections the pool opens; 0 takes pool_max_conns from DATABASE_URL, else 4 per CPU within 8-64 (here %d)", postgres.DefaultMaxConns()))
	statementTimeout := fs.Duration("db-statement-timeout", postgres.DefaultStatementTimeout, "longest a single database statement may run (imports and migrations excepted); 0 leaves the database's setting, normally none")
	replicaURL := fs.String("replica-url", envOr("GRIDMAP_REPLICA_URL", ""),
		"a PostgreSQL streaming replica of the database, for the reads that tolerate its lag (grid tiles, OGC features) and the lookup index's loads once it has replayed their change; writes and everything else stay on the primary")
	publicRead := fs.Bool("public-read", envOr("GRIDMAP_PUBLIC_READ", "") == "true", "let anonymous callers read tiles, lookups and layers (a trusted network only)")
	hugePages := fs.Bool("huge-pages", envOr("GRIDMAP_HUGE_PAGES", "true") != "false",
		"move large lookup indexes into transparent huge pages where the machine allows them (false: leave them in small pages)")
	metricsAddr := fs.String("metrics-addr", envOr("GRIDMAP_METRICS_ADDR", ""), "also serve /metrics without credentials on this address (the monitoring network's)")
	corsOrigins := fs.String("cors-origins", envOr("GRIDMAP_CORS_ORIGINS", ""), "comma-separated origins of other sites whose pages may call the API (none by default)")
	trustProxy := fs.String("trust-proxy", envOr("GRIDMAP_TRUST_PROXY", ""), "comma-separated networks (CIDR) of the reverse proxies in front, whose X-Forwarded-For and X-Forwarded-Proto are believed (none by default)")
	secureCookies := fs.Bool("secure-cookies", false, "mark session cookies Secure even without TLS here (TLS ends at a proxy)")
	basemap := fs.String("basemap-style", envOr("GRIDMAP_BASEMAP_STYLE", ""), "URL of a MapLibre style the console draws under the grids (a Tianditu or government e-map style); none by default, which works offline")
	rateLimit := fs.Float64("rate-limit", server.DefaultRateLimit, "requests a second one token or account may make (0: no limit)")
	trackRetention := fs.String("track-retention", envOr("GRIDMAP_TRACK_RETENTION", "180d"),
		"how long workers' track points are kept: days such as 180d or a duration such as 4320h; older ones are removed hourly")
	addressRateLimit := fs.Float64("address-rate-limit", server.DefaultAddressRateLimit, "requests a second an address may make without credentials, sign-ins included (0: no limit)")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	if *requestTimeout <= 0 {
		return fmt.Errorf("--request-timeout %v: give a positive duration such as 30s", *requestTimeout)
	}
	retention, err := trackRetentionOf(*trackRetention)
	if err != nil {
		return err
	}
	dbOpts, err := poolOptions(*maxConns, *statementTimeout)
	if err != nil {
		return err
	}
	dbOpts.ReplicaURL = *replicaURL

	if *statementTimeout > 0 && *statementTimeout < *requestTimeout {
		logger.Warn("--db-statement-timeout is shorter than --request-timeout: slow requests will stop on it first",
			"db_statement_timeout", *statementTimeout, "request_timeout", *requestTimeout)
	}

	hugepage.Enable(*hugePages)

	tz, err := time.LoadLocation(*timeZone)
	if err != nil {
		return fmt.Errorf("--time-zone %q: %w", *timeZone, err)
	}
	db, err := openDatabaseWith(ctx, *dataDir, logger, dbOpts)
	if err != nil {
		return err
	}
	defer db.Close(true)
	layers, grids := postgres.NewLayerStore(db.DB), postgres.NewGridStore(db.DB)
	if *withDemo {
		if err := loadDemo(ctx, db.DB, demo.DefaultSeed, logger); err != nil {
			return err
		}
	}

	// Grids written before tiles existed get their tile shapes now.
	if filled, err := grids.FillTileShapes(ctx); err != nil {
		return fmt.Errorf("preparing tile shapes: %w", err)
	} else if len(filled) > 0 {
		logger.Info("tile shapes prepared", "layers", filled)
	}

	// The lookup index follows every boundary change on the database;
	// requests are accepted once it is loaded.
	locator := postgres.NewLocator(db.DB)
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	go locator.Follow(followCtx)
	feed := postgres.NewFeed(db.DB)
	go feed.Run(followCtx)
	reports := postgres.NewReportStore(db.DB, locator, tz)
	go reports.FollowOverdue(followCtx, *overdueEvery)
	// Reports are kept by month: the months ahead are made by the hour.
	go reports.FollowMonths(followCtx, time.Hour)
	go postgres.NewOutbox(db.DB, &http.Client{Timeout: 15 * time.Second}).Follow(followCtx, time.Second)
	// Workers' tracks are kept for the retention, removed by the hour.
	patrols := postgres.NewPatrolStore(db.DB, tz, retention)
	go patrols.FollowRetention(followCtx, time.Hour)
	// Each day's patrol coverage is measured once it is over, and again
	// when late points arrive.
	go patrols.FollowPatrolDays(followCtx, 5*time.Minute)
	// The indicators' daily sums take in what reports changed.
	stats := postgres.NewStatsStore(db.DB)
	go stats.FollowStats(followCtx, 5*time.Second)
	// The tile cache drops what every change touches, on every instance.
	tileStore := postgres.NewTileStore(db.DB)
	tileStore.KeepTileBlocks(int64(*tileBlocksMB) << 20)
	tileService := tiles.NewService(tileStore, int64(*tileCacheMB)<<20)
	tilesFollowing := make(chan struct{})
	go tileStore.FollowTileChanges(followCtx, tileService.Cache(), func() { close(tilesFollowing) })
	start := time.Now()
	for _, ready := range []<-chan struct{}{locator.Listening(), tilesFollowing} {
		select {
		case <-ready:
		case <-ctx.Done():
			return nil
		}
	}
	logger.Info("lookup index loaded", "took_ms", time.Since(start).Milliseconds())
	access := postgres.NewAccessStore(db.DB)
	go access.Follow(followCtx)
	select {
	case <-access.Listening():
	case <-ctx.Done():
		return nil
	}
	if *withDemo {
		start := time.Now()
		n, err := loadDemoReports(ctx, db.DB, locator, nil, demo.DefaultSeed, tz)
		if err != nil {
			return fmt.Errorf("demo reports: %w", err)
		}
		logger.Info("demo responsibility list loaded", "reports_filed", n, "took_ms", time.Since(start).Milliseconds())
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	var proxies []*net.IPNet
	for _, p := range strings.Split(*trustProxy, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			p += map[bool]string{true: "/32", false: "/128"}[net.ParseIP(p).To4() != nil]
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return fmt.Errorf("--trust-proxy %q: give networks such as 10.0.0.5/32 or 10.1.0.0/16", p)
		}
		proxies = append(proxies, n)
	}
	var origins []string
	for _, o := range strings.Split(*corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	srv := server.New(server.Config{Addr: *addr, BodyLimit: *bodyLimit, ImportLimit: *importLimit,
		RequestTimeout: *requestTimeout, PublicRead: *publicRead, CORSOrigins: origins, TrustedProxies: proxies,
		SecureCookies: *secureCookies, BasemapStyle: *basemap, TimeZone: tz.String(), RateLimit: *rateLimit, AddressRateLimit: *addressRateLimit},
		server.Deps{Layers: layers, Grids: grids, Importer: grids, Editor: grids, Drafts: grids, Locator: locator,
			Reports: reports, Categories: postgres.NewCategoryStore(db.DB),
			Feed: feed, Tiles: tileService, PoolStats: db.PoolStats, Unavailable: postgres.Unavailable, Access: access, Search: postgres.NewSearchStore(db.DB),
			Features: postgres.NewFeatureStore(db.DB), Stats: stats, Indicators: postgres.NewIndicatorStore(db.DB, stats, tz),
			Party: postgres.NewPartyStore(db.DB, tz), Leaders: postgres.NewLeaderStore(db.DB, tz),
			Patrols: patrols,
			Ready: func(ctx context.Context) error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				if err := db.Ping(ctx); err != nil {
					return fmt.Errorf("%w: %w", gridmap.Errorf(gridmap.EUNAVAILABLE, "the database is unreachable"), err)
				}
				return locator.Ready()
			}}, logger)
	// Somebody must be able to sign in before the first request.
	greeting, err := welcome(ctx, access, db.DB, *dataDir, *withDemo, "http://"+ln.Addr().String(), logger)
	if err != nil {
		ln.Close()
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", *metricsAddr, err)
		}
		metricsSrv := &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute}
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("serving metrics stopped", "err", err)
			}
		}()
		defer metricsSrv.Close()
		logger.Info("serving metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}
	logger.Info("serving", "url", url)
	fmt.Fprintf(stdout, "gridmap serving at %s\n", url)
	fmt.Fprint(stdout, greeting)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("requests still running at shutdown", "err", err)
	}
	return nil
}

// trackRetentionOf reads --track-retention: days such as 180d or a
// duration such as 4320h, positive and at most ten years.
func trackRetentionOf(v string) (time.Duration, error) {
	d, err := gridmap.ParseLifetime(v)
	if err != nil {
		return 0, fmt.Errorf("--track-retention %q: give days such as 180d or a duration such as 4320h, at most ten years", v)
	}
	return d, nil
}
