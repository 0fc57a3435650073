// Package server is gridmap's HTTP interface: routes, handlers, the one
// error handler, request logging and metrics, and the embedded web pages.
// Handlers call the domain interfaces; there is no SQL here.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/gridmap/gridmap/tiles"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/labstack/gommon/bytes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/semaphore"
)

// Config is what the server needs to know, read once by cmd.
type Config struct {
	Addr         string
	BodyLimit    string // for ordinary requests, echo notation ("10M")
	ImportLimit  string // for import bodies ("1G")
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// RequestTimeout is the deadline of every request's context (default
	// 30 s), so that no request holds a database connection for longer;
	// work stopped by it answers 503. The live feed has none, imports 30
	// minutes.
	RequestTimeout time.Duration
	// PublicRead opens tiles, lookups and layer reads to anonymous callers
	// (a trusted network); everything else still needs a credential.
	PublicRead bool
	// CORSOrigins are the other sites' origins whose pages may call the
	// API; none by default.
	CORSOrigins []string
	// SecureCookies marks session cookies Secure even when the request did
	// not arrive over TLS (TLS ends at a proxy that does not say so).
	SecureCookies bool
	// TrustedProxies are the networks (CIDR) of the reverse proxies in
	// front: a request from one of them has its client's address taken
	// from X-Forwarded-For and its scheme from X-Forwarded-Proto. None by
	// default: every address is the connection's own.
	TrustedProxies []*net.IPNet
	// RateLimit is how many requests a second one token or account may
	// make (bursts of twice that); AddressRateLimit the same for anonymous
	// callers and sign-in attempts, per address. 0 = no limit.
	RateLimit        float64
	AddressRateLimit float64
	// ConnectSources are origins the pages may fetch from besides this
	// server (a basemap style's tile server), for the Content-Security-Policy.
	ConnectSources []string
	// BasemapStyle is a MapLibre style URL the console draws under the
	// grids (a Tianditu or government e-map style); "" draws none, which
	// works offline. Its origin is added to ConnectSources.
	BasemapStyle string
	// TimeZone is the deployment's zone (IANA name), in which the pages
	// show dates.
	TimeZone string
}

// Default rate limits: generous for systems and the console's tile
// bursts, tight for callers without credentials.
const (
	DefaultRateLimit        = 2000
	DefaultAddressRateLimit = 20
)

// Deps are the services the handlers call.
type Deps struct {
	Layers   gridmap.LayerService
	Grids    gridmap.GridService
	Importer gridmap.Importer
	Editor   gridmap.BoundaryEditor
	// Drafts keeps layer drafts and exports grids; nil leaves the draft,
	// publish and export routes out.
	Drafts     gridmap.DraftService
	Locator    gridmap.Locator
	Reports    gridmap.ReportService
	Categories gridmap.CategoryService
	Feed       gridmap.Feed
	// Access keeps accounts, sessions, tokens and the audit log; nil
	// leaves every caller anonymous.
	Access gridmap.AccessService
	// Search finds grids and reports by text; nil leaves /v1/search out.
	Search gridmap.Searcher
	// Features reads the collections of OGC API - Features; nil leaves
	// /ogc out.
	Features gridmap.FeatureService
	// Tiles serves vector tiles; nil leaves the tile routes out.
	Tiles *tiles.Service
	// Stats computes the indicators; nil leaves /v1/stats out.
	Stats gridmap.StatsService
	// Indicators raises flags, compares workloads, draws trends and keeps
	// the flags' rules; nil leaves /v1/stats/flags, workload, trend and
	// rules out.
	Indicators gridmap.IndicatorService
	// Party keeps grids' party organisations and streets' joint meetings;
	// nil leaves /v1/party and the grids' party routes out.
	Party gridmap.PartyService
	// Leaders keeps leaders' grids and check-ins and counts their figures;
	// nil leaves /v1/leaders and /v1/checkins out.
	Leaders gridmap.LeaderService
	// Ready reports whether the service can answer (database reachable,
	// indexes loaded); nil error means ready.
	Ready func(ctx context.Context) error
	// Patrols keeps workers' tracks and positions; nil leaves /v1/tracks,
	// /v1/workers, /v1/patrol and nearby-workers out.
	Patrols gridmap.PatrolService
	// PoolStats describes the database connection pool for /metrics; nil
	// leaves the pool figures out.
	PoolStats func() gridmap.PoolStats
	// Unavailable turns an error of work the database could not do for a
	// while (unreachable, read-only, out of disk: postgres.Unavailable)
	// into the 503 with Retry-After to answer, whatever store it came
	// from; nil for any other error. A nil func: none is.
	Unavailable func(error) *gridmap.Error
}

// Server is the HTTP server.
type Server struct {
	echo    *echo.Echo
	http    *http.Server
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	metrics *metrics
	// streams ends when Shutdown begins: event streams end then instead of
	// holding up the drain.
	streams    context.Context
	endStreams context.CancelFunc
	// csp is the Content-Security-Policy of the pages and of every answer
	// off the API's paths (isAPIPath).
	csp string
	// securityHeaders are the headers of every answer, csp among them;
	// apiSecurityHeaders the same with apiSecurity for csp, on the API's
	// routes.
	securityHeaders, apiSecurityHeaders []fixedHeader
	// bodyLimit is Config.BodyLimit in bytes.
	bodyLimit int64
	rates     *limiters
	// anonymousRefusals keeps the audit log to one entry a minute per
	// address, action and answer for callers nobody signed in.
	anonymousRefusals onceAMinute
	auditLog          *auditWriter
	// assets are the paths of the pages' own files, open to everyone.
	assets map[string]bool
	// routeKeys are the registered routes ("METHOD path"), read once.
	routeSet  sync.Once
	routeKeys map[string]bool
	// clocks count the time left on reports.
	clocks *clockCache
	// middleware is every request's, in order; lookupChain is GET
	// /v1/lookup's route with it, composed once (see ServeHTTP).
	middleware  []echo.MiddlewareFunc
	lookupChain echo.HandlerFunc
	// batchPoints admits the points of large batch lookups answered at
	// once, up to one full batch (see answerInSpaceOrder).
	batchPoints *semaphore.Weighted
	// answersHeld counts the bytes of batches' answers held until their
	// clients have read them, admitting batches within maxAnswersHeld (see
	// answerInSpaceOrder, streamBatch and answerHistory). Tests replace it.
	answersHeld atomic.Pointer[room]
	// spaceOrderFrom is the size from which batches are answered in space
	// order: defaultSpaceOrderFrom (a benchmark raises it to time input
	// order).
	spaceOrderFrom int
}

// New builds the server and its routes.
func New(cfg Config, deps Deps, logger *slog.Logger) *Server {
	if cfg.BodyLimit == "" {
		cfg.BodyLimit = "10M"
	}
	if cfg.ImportLimit == "" {
		cfg.ImportLimit = "1G"
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{echo: e, cfg: cfg, deps: deps, logger: logger, metrics: newMetrics(), rates: newLimiters(), csp: pageSecurity,
		batchPoints: semaphore.NewWeighted(gridmap.MaxLookupPoints), spaceOrderFrom: defaultSpaceOrderFrom,
	}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	limit, err := bytes.Parse(cfg.BodyLimit)
	if err != nil {
		panic("server: BodyLimit " + cfg.BodyLimit + ": " + err.Error())
	}
	s.bodyLimit = limit
	sources := cfg.ConnectSources
	if u, err := url.Parse(cfg.BasemapStyle); err == nil && u.Scheme != "" && u.Host != "" {
		sources = append(sources, u.Scheme+"://"+u.Host)
		s.csp = strings.Replace(s.csp, "img-src 'self'", "img-src 'self' "+u.Scheme+"://"+u.Host, 1)
	}
	for _, src := range sources {
		s.csp = strings.Replace(s.csp, "connect-src 'self'", "connect-src 'self' "+src, 1)
	}
	if maps := importMapSources(); len(maps) > 0 {
		s.csp = strings.Replace(s.csp, "script-src 'self'", "script-src 'self' "+strings.Join(maps, " "), 1)
	}
	s.securityHeaders, s.apiSecurityHeaders = securityHeaders(s.csp), securityHeaders(apiSecurity)
	s.clocks = newClockCache(cfg.TimeZone, deps.Categories)
	if deps.Access != nil {
		s.auditLog = newAuditWriter(deps.Access.Audit, func(err error, n int) {
			s.logger.Error("writing the audit log failed; entries lost", "entries", n, "err", err)
		})
	}
	e.IPExtractor = echo.ExtractIPDirect()
	if len(cfg.TrustedProxies) > 0 {
		// Only the configured proxies: not echo's default of every private
		// network, where any office PC could name its own address.
		trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range cfg.TrustedProxies {
			trust = append(trust, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	}
	if st, ok := deps.Locator.(indexStatser); ok {
		s.metrics.registry.MustRegister(&indexCollector{st})
	}
	if deps.PoolStats != nil {
		s.metrics.registry.MustRegister(&poolCollector{deps.PoolStats})
	}
	answers := newRoom(maxAnswersHeld)
	s.answersHeld.Store(answers)
	s.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gridmap_lookup_answers_held_bytes",
		Help: fmt.Sprintf("Bytes batch lookups' answers hold until their clients read them; a batch whose least does not fit in %d MiB (%d MiB for one caller) is refused (503).", answers.size>>20, answers.share>>20),
	}, func() float64 { return float64(s.answersHeld.Load().bytes()) }))
	e.HTTPErrorHandler = s.handleError
	use := func(m echo.MiddlewareFunc) { s.middleware = append(s.middleware, m) }
	use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: newRequestIDs().next}))
	use(s.observe)
	use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.logger.Error("panic", "request_id", requestID(c), "err", err, "stack", string(stack))
			return err
		}}))
	use(s.secureHeaders)
	if len(cfg.CORSOrigins) > 0 {
		use(middleware.CORSWithConfig(middleware.CORSConfig{AllowOrigins: cfg.CORSOrigins,
			AllowHeaders:  []string{echo.HeaderAuthorization, echo.HeaderContentType, "If-Match", "If-None-Match", csrfHeader, "Last-Event-ID"},
			ExposeHeaders: []string{"ETag", "Retry-After", echo.HeaderXRequestID}, MaxAge: 600}))
	}
	use(s.deadline)
	// The audit log sees every write, refused ones included (a bad token,
	// a missing CSRF token, another origin); the rate limit comes before
	// the route's rule, so anonymous floods are answered 429 cheaply.
	use(s.audit)
	use(s.authenticate)
	use(s.limitRate)
	use(s.authorize)
	use(refuseUnstorableText)
	e.Use(s.middleware...)
	s.routes()
	route := e.NewContext(nil, nil)
	e.Router().Find(http.MethodGet, lookupRoute, route)
	s.lookupChain = route.Handler()
	for i := len(s.middleware) - 1; i >= 0; i-- {
		s.lookupChain = s.middleware[i](s.lookupChain)
	}
	s.http = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the HTTP handler, for tests with httptest.
func (s *Server) Handler() http.Handler { return s }

// lookupRoute is the hottest route, served by ServeHTTP itself.
const lookupRoute = "/v1/lookup"

// ServeHTTP serves a request through echo, except GET /v1/lookup, whose
// chain of middleware and route is composed once in New: echo composes
// each request's anew, a closure per middleware. The chain is the same
// middleware in the same order around the handler the router finds.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != lookupRoute || r.URL.RawPath != "" {
		s.echo.ServeHTTP(w, watchBody(r))
		return
	}
	c := s.echo.AcquireContext()
	c.Reset(r, w)
	s.echo.Router().Find(r.Method, lookupRoute, c)
	if err := s.lookupChain(c); err != nil {
		s.echo.HTTPErrorHandler(err, c)
	}
	s.echo.ReleaseContext(c)
}

func (s *Server) routes() {
	e := s.echo
	limit := middleware.BodyLimit(s.cfg.BodyLimit)
	e.GET("/healthz", s.handleHealthz)
	e.GET("/openapi.json", s.handleOpenAPI())
	e.GET("/readyz", s.handleReadyz)
	e.GET("/metrics", s.handleMetrics)
	e.GET("/signin/:secret", s.handleSignInLink)

	v1 := e.Group("/v1")
	v1.POST("/session", s.handleSignIn, limit)
	v1.GET("/session", s.handleSession)
	v1.DELETE("/session", s.handleSignOut)
	v1.GET("/users", s.handleUsers)
	v1.POST("/users", s.handleAddUser, limit)
	v1.GET("/users/:username", s.handleUser)
	v1.PATCH("/users/:username", s.handleChangeUser, limit)
	v1.GET("/tokens", s.handleTokens)
	v1.POST("/tokens", s.handleCreateToken, limit)
	v1.DELETE("/tokens/:name", s.handleRevokeToken)
	v1.GET("/audit", s.handleAudit)
	v1.GET("/config", s.handleConfig)

	v1.GET("/layers", s.handleLayers)
	v1.GET("/layers/:layer", s.handleLayer)
	v1.PUT("/layers/:layer", s.handlePutLayer, limit)
	v1.GET("/layers/:layer/grids", s.handleGrids)
	v1.GET("/layers/:layer/grids/:code", s.handleGrid)
	v1.PUT("/layers/:layer/grids/:code", s.handlePutGrid, limit)
	v1.DELETE("/layers/:layer/grids/:code", s.handleDeleteGrid)
	v1.GET("/layers/:layer/grids/:code/history", s.handleGridHistory)
	v1.POST("/layers/:layer/changesets", s.handleChangeset, limit)
	v1.GET("/layers/:layer/coverage", s.handleCoverage)
	v1.PUT("/layers/:layer/grids/:code/people", s.handlePutPeople, limit)
	e.POST(importRoute, s.handleImport, middleware.BodyLimit(s.cfg.ImportLimit))
	if s.deps.Drafts != nil {
		v1.GET("/layers/:layer/draft", s.handleDraft)
		v1.DELETE("/layers/:layer/draft", s.handleDiscardDraft)
		v1.GET("/layers/:layer/draft/grids", s.handleDraftGrids)
		v1.POST("/layers/:layer/draft/changesets", s.handleDraftChangeset, limit)
		v1.POST("/layers/:layer/draft/resolve", s.handleResolveOverlap, limit)
		v1.POST("/layers/:layer/publish", s.handlePublish, limit)
		e.GET(exportRoute, s.handleExport)
	}
	if s.deps.Search != nil {
		v1.GET("/search", s.handleSearch)
	}
	v1.GET("/lookup", s.handleLookup) // served by ServeHTTP: see lookupRoute
	// 100,000 points at full precision with spaces fit well within 64 MB;
	// a larger batch is refused by its count, with a message saying so.
	v1.POST("/lookup", s.handleLookupBatch, middleware.BodyLimit("64M"))

	v1.POST("/reports", s.handleCreateReport, limit)
	v1.GET("/reports", s.handleReports)
	v1.GET("/recurring", s.handleRecurring)
	v1.GET("/reports/counts", s.handleReportCounts) // a static segment: echo tries it before /reports/:id
	v1.GET("/reports/:id", s.handleReport)
	v1.POST("/reports/:id/events", s.handleReportEvent, limit)
	v1.GET("/reports/:id/events", s.handleReportEvents)
	if s.deps.Patrols != nil {
		// 10,000 points a batch with long device ids and full precision
		// fit in 4 MB; more points are refused by their count.
		v1.POST("/tracks", s.handleAddTrack, middleware.BodyLimit("4M"))
		v1.GET("/workers", s.handleWorkers)
		v1.GET("/workers/:username/track", s.handleWorkerTrack)
		v1.GET("/patrol/coverage", s.handlePatrolCoverage)
		v1.GET("/patrol/idle", s.handlePatrolIdle)
		v1.GET("/patrol", s.handlePatrol)
		if s.deps.Stats != nil && s.deps.Leaders != nil {
			v1.GET("/assessment", s.handleAssessment)
		}
		v1.GET("/reports/:id/nearby-workers", s.handleNearbyWorkers)
	}
	if s.deps.Stats != nil {
		v1.GET("/stats", s.handleStats)
	}
	if s.deps.Indicators != nil {
		v1.GET("/stats/flags", s.handleStatsFlags)
		v1.GET("/stats/workload", s.handleStatsWorkload)
		v1.GET("/stats/trend", s.handleStatsTrend)
		v1.GET("/stats/rules", s.handleStatsRules)
		v1.PUT("/stats/rules", s.handlePutStatsRules, limit)
	}
	e.GET(eventsRoute, s.handleEvents)
	v1.GET("/categories", s.handleCategories)
	v1.GET("/categories/:code", s.handleCategory)
	v1.PUT("/categories/:code", s.handlePutCategory, limit)
	v1.GET("/calendar", s.handleCalendar)
	v1.PUT("/calendar/:date", s.handlePutCalendarDay, limit)
	v1.GET("/departments", s.handleDepartments)
	v1.GET("/departments/:code", s.handleDepartment)
	v1.PUT("/departments/:code", s.handlePutDepartment, limit)

	if s.deps.Party != nil {
		v1.GET("/layers/:layer/grids/:code/party", s.handleParty)
		v1.PUT("/layers/:layer/grids/:code/party", s.handlePutParty, limit)
		v1.DELETE("/layers/:layer/grids/:code/party", s.handleDeleteParty)
		v1.GET("/party", s.handlePartyCoverage)
		v1.GET("/party/meetings", s.handleMeetings)
		v1.POST("/party/meetings", s.handleAddMeeting, limit)
	}
	if s.deps.Leaders != nil {
		v1.GET("/leaders", s.handleLeaders)
		v1.GET("/leaders/:username/assignments", s.handleLeaderAssignments)
		v1.PUT("/leaders/:username/assignments", s.handlePutLeaderAssignments, limit)
		v1.POST("/checkins", s.handleCheckIn, limit)
	}

	if s.deps.Features != nil {
		s.ogcRoutes()
	}
	s.open311Routes()
	s.tileRoutes()
	s.staticRoutes()
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown ends the event streams, stops accepting connections and waits
// for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.endStreams()
	err := s.http.Shutdown(ctx)
	if s.auditLog != nil {
		s.auditLog.close(ctx)
	}
	return err
}

// MetricsHandler serves /metrics without credentials, for a listener of
// its own (--metrics-addr) that only the monitoring network reaches.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	return mux
}

// observe logs every request as one JSON line and counts it in /metrics.
// Errors go through the error handler here, so the status is known.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		req := c.Request()
		s.metrics.observe(req.Method, route, status, d)
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status < 400 && quietRoutes[route]:
			// Thousands a second: counted in /metrics, logged only when
			// debugging.
			level = slog.LevelDebug
		}
		// The line is built only when it is written.
		if !s.logger.Enabled(req.Context(), level) {
			return nil
		}
		s.logger.LogAttrs(req.Context(), level, "request", slog.String("request_id", requestID(c)),
			slog.String("method", req.Method), slog.String("path", maskedPath(c)), slog.String("route", route), slog.Int("status", status),
			slog.Int64("bytes", c.Response().Size), slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("remote", c.RealIP()))
		return nil
	}
}

// deadline gives the request's context its deadline: RequestTimeout,
// 30 minutes for imports, none for the live feed, which stays open for
// hours (the statement timeout still bounds each of its queries).
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		timeout := s.cfg.RequestTimeout
		switch c.Path() {
		case eventsRoute:
			return next(c)
		case importRoute:
			timeout = importReadTimeout // as long as its body may take to arrive
		case exportRoute:
			timeout = importReadTimeout // a whole layer, streamed to a slow client
		}
		ctx, end := withDeadline(c.Request().Context(), time.Now().Add(timeout))
		defer end()
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// The routes whose deadline is not RequestTimeout.
const (
	eventsRoute = "/v1/events"
	importRoute = "/v1/layers/:layer/import"
	exportRoute = "/v1/layers/:layer/export"
)

// quietRoutes are the high-rate routes whose successful requests are not
// logged at info.
var quietRoutes = map[string]bool{"/v1/lookup": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/tiles/:tileset/:z/:x/:y": true}

func requestID(c echo.Context) string { return c.Response().Header().Get(echo.HeaderXRequestID) }

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// series are the children of requests and duration already resolved,
	// by method, route and status: a request finds its own without
	// hashing labels or locking. Copied on write under mu.
	series atomic.Pointer[map[seriesKey]*series]
	mu     sync.Mutex
}

type seriesKey struct {
	method, route string
	status        int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// maxSeries bounds the resolved children kept: past it (methods nobody
// routes, sent from outside), a request resolves its own each time.
const maxSeries = 4096

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gridmap_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gridmap_http_request_duration_seconds", Help: "HTTP request duration by route.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"method", "route"}),
	}
	m.registry.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.series.Store(&map[seriesKey]*series{})
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	method = methodLabel(method)
	sr := (*m.series.Load())[seriesKey{method, route, status}]
	if sr == nil {
		sr = m.resolve(seriesKey{method, route, status})
	}
	sr.requests.Inc()
	sr.duration.Observe(d.Seconds())
}

// methodLabel is the method as metrics label it: one of HTTP's, or OTHER,
// so that made-up methods cannot make series without end.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

// resolve finds the children of a series seen for the first time.
func (m *metrics) resolve(k seriesKey) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if sr := old[k]; sr != nil {
		return sr
	}
	sr := &series{requests: m.requests.WithLabelValues(k.method, k.route, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.method, k.route)}
	if len(old) >= maxSeries {
		return sr
	}
	next := make(map[seriesKey]*series, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = sr
	m.series.Store(&next)
	return sr
}

// indexStatser is a Locator that can describe its in-memory index.
type indexStatser interface{ IndexStats() []gridmap.IndexStats }

var (
	indexGridsDesc = prometheus.NewDesc("gridmap_lookup_index_grids", "Grids in the in-memory lookup index.", []string{"layer"}, nil)
	indexVertsDesc = prometheus.NewDesc("gridmap_lookup_index_vertices", "Vertices the lookup index holds, those of versions edits replaced included until its store is copied afresh.", []string{"layer"}, nil)
	indexNearDesc  = prometheus.NewDesc("gridmap_lookup_index_near_bytes", "Bytes the lookup index keeps for points outside every grid (nearest-grid lists).", []string{"layer"}, nil)
	indexHugeDesc  = prometheus.NewDesc("gridmap_lookup_index_huge_page_bytes", "Bytes of the arrays lookups read that the layer's latest build moved into huge pages.", []string{"layer"}, nil)
	indexUnmoved   = prometheus.NewDesc("gridmap_lookup_index_huge_pages_unmoved", "Huge pages of the arrays lookups read that the layer's latest build could not move: for want of memory (short) or because the kernel would not (refused).", []string{"layer", "reason"}, nil)
	indexVerDesc   = prometheus.NewDesc("gridmap_lookup_index_data_version", "Data version of the layer the index holds.", []string{"layer"}, nil)
	indexRebDesc   = prometheus.NewDesc("gridmap_lookup_index_rebuilds_total", "Rebuilds of the layer's index since start.", []string{"layer"}, nil)
	indexLastDesc  = prometheus.NewDesc("gridmap_lookup_index_last_rebuild_seconds", "Duration of the layer's latest index rebuild.", []string{"layer"}, nil)
	indexFromDesc  = prometheus.NewDesc("gridmap_lookup_index_from_replica", "1 when the layer's latest index rebuild read the streaming replica, 0 the primary.", []string{"layer"}, nil)
)

// indexCollector reports the lookup index on each scrape.
type indexCollector struct{ src indexStatser }

func (c *indexCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{indexGridsDesc, indexVertsDesc, indexNearDesc, indexHugeDesc, indexUnmoved, indexVerDesc, indexRebDesc, indexLastDesc, indexFromDesc} {
		ch <- d
	}
}

func (c *indexCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.src.IndexStats() {
		ch <- prometheus.MustNewConstMetric(indexGridsDesc, prometheus.GaugeValue, float64(st.Grids), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexVertsDesc, prometheus.GaugeValue, float64(st.Vertices), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexNearDesc, prometheus.GaugeValue, float64(st.NearBytes), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexHugeDesc, prometheus.GaugeValue, float64(st.HugePageBytes), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexUnmoved, prometheus.GaugeValue, float64(st.HugePagesShort), st.Layer, "short")
		ch <- prometheus.MustNewConstMetric(indexUnmoved, prometheus.GaugeValue, float64(st.HugePagesRefused), st.Layer, "refused")
		ch <- prometheus.MustNewConstMetric(indexVerDesc, prometheus.GaugeValue, float64(st.DataVersion), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexRebDesc, prometheus.CounterValue, float64(st.Rebuilds), st.Layer)
		ch <- prometheus.MustNewConstMetric(indexLastDesc, prometheus.GaugeValue, st.LastRebuild.Seconds(), st.Layer)
		fromReplica := 0.0
		if st.FromReplica {
			fromReplica = 1
		}
		ch <- prometheus.MustNewConstMetric(indexFromDesc, prometheus.GaugeValue, fromReplica, st.Layer)
	}
}

// handleConfig tells the pages how this deployment draws: GET /v1/config ->
// {"basemap_style": URL or "", "time_zone"}.
func (s *Server) handleConfig(c echo.Context) error {
	tz := s.cfg.TimeZone
	if tz == "" {
		tz = dispatch.DefaultTimeZone
	}
	return c.JSON(http.StatusOK, map[string]string{"basemap_style": s.cfg.BasemapStyle, "time_zone": tz})
}
