package server

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/dispatch"
	"github.com/labstack/echo/v4"
)

// v1Operation describes one /v1 route for the OpenAPI document. Who may
// call it comes from rules, so the document and the access checks agree.
type v1Operation struct {
	method, path string // as registered with echo
	op           *oasOperation
	// fails are the error statuses the route answers besides 401 and 403
	// (added from its rule) and the default.
	fails []int
	// optional routes are registered only when their service is
	// configured (drafts and export, search): left out otherwise.
	optional bool
}

// patrolLevelParam describes the level of the patrol routes.
const patrolLevelParam = "a level of the layer (default the coarsest grid-tier level a worker is linked at, else the finest grid-tier level)"

// handleOpenAPI returns the handler of GET /openapi.json: the /v1 API as an
// OpenAPI 3.0 document, built at the first request (once every route is
// registered) and served as the same bytes with an ETag after that.
func (s *Server) handleOpenAPI() echo.HandlerFunc {
	var doc servedDocument
	return func(c echo.Context) error {
		if err := doc.load(func() ([]byte, error) { return s.v1Document().marshal() }); err != nil {
			return err
		}
		return doc.serve(c, oasMediaTypeJSON)
	}
}

// servedDocument is a document built once, at the first request, and
// served as the same bytes with an ETag after that.
type servedDocument struct {
	once sync.Once
	body []byte
	etag string
	err  error
}

// load builds the document the first time it is called.
func (d *servedDocument) load(build func() ([]byte, error)) error {
	d.once.Do(func() {
		if d.body, d.err = build(); d.err == nil {
			sum := sha256.Sum256(d.body)
			d.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
		}
	})
	return d.err
}

// serve answers the loaded document, or 304 to a client that has it.
func (d *servedDocument) serve(c echo.Context, mediaType string) error {
	c.Response().Header().Set("ETag", d.etag)
	if c.Request().Header.Get("If-None-Match") == d.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, mediaType, d.body)
}

// v1Document is the OpenAPI document of the /v1 routes this server has.
func (s *Server) v1Document() *oasDocument {
	d := newOASDocument(oasInfo{Title: "gridmap API", Version: "v1",
		Description: "Grids, point lookup, reports and their workflow, and the accounts that use them. " +
			"JSON unless said otherwise; every error answers the Error schema with one status per error code."})
	d.Servers = []oasServer{{URL: "/"}}
	for _, t := range []oasTag{
		{Name: "access", Description: "Sessions, accounts, tokens and the audit log."},
		{Name: "layers", Description: "Layers and their grids, edits, drafts, imports and exports."},
		{Name: "lookup", Description: "Which grids cover a point."},
		{Name: "reports", Description: "Reports, their workflow and the live feed."},
		{Name: "responsibility", Description: "Categories, departments and the working calendar."},
		{Name: "search", Description: "Grids and reports by text."},
		{Name: "party", Description: "Grids' party organisations (党组织) and streets' joint meetings (党建联席会议)."},
		{Name: "leaders", Description: "Leaders' grids (包联), their check-ins (下沉报到) and figures."},
	} {
		d.Tags = append(d.Tags, t)
	}
	for _, o := range append(v1Operations(d.schemas), partyOperations(d.schemas)...) {
		if o.optional && !s.registered(o.method, o.path) {
			continue
		}
		r, ok := rules[o.method+" "+o.path]
		if ok {
			o.op.Description = strings.TrimSpace(o.op.Description + "\n\n" + s.accessNote(r))
			switch {
			case r.role == "":
				o.op.Security = &[]oasSecurityRequirement{}
			case r.public && s.cfg.PublicRead:
				open := append(oasSignedIn(), oasSecurityRequirement{})
				o.op.Security = &open
			}
			if r.role != "" {
				o.fails = append(o.fails, http.StatusUnauthorized, http.StatusForbidden)
			}
		}
		if o.op.Tags == nil {
			o.op.Tags = []string{v1Tag(o.path)}
		}
		d.canFail(o.op, o.fails...)
		d.add(o.method, o.path, o.op)
	}
	return d
}

// accessNote says in words who may call a route with rule r.
func (s *Server) accessNote(r rule) string {
	if r.role == "" {
		return "Role: none (open to everyone)."
	}
	note := "Role: " + r.role + "."
	if r.public {
		note += " Public read: anonymous callers may call it when the server runs with --public-read"
		if s.cfg.PublicRead {
			note += " (this one does)"
		}
		note += "."
	}
	if r.global {
		note += " Not for callers scoped to a grid: it concerns the whole service."
	}
	return note
}

// v1Tag groups a route by its first segment after /v1.
func v1Tag(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), "/")
	switch seg {
	case "session", "users", "tokens", "audit", "config":
		return "access"
	case "categories", "departments", "calendar":
		return "responsibility"
	case "events":
		return "reports"
	case "checkins":
		return "leaders"
	}
	return seg
}

// Parameters and shapes several operations share.

func queryParam(name, typ, description string) *oasParameter {
	return &oasParameter{Name: name, In: "query", Description: description, Schema: &oasSchema{Type: typ}}
}

func queryTime(name, description string) *oasParameter {
	return &oasParameter{Name: name, In: "query", Description: description, Schema: &oasSchema{Type: "string", Format: "date-time"}}
}

func headerParam(name, description string) *oasParameter {
	return &oasParameter{Name: name, In: "header", Description: description, Schema: &oasSchema{Type: "string"}}
}

func jsonBody(s *oasSchema, description string) *oasRequestBody {
	return &oasRequestBody{Required: true, Description: description, Content: oasJSON(s)}
}

// answer is a JSON response; description "" is "OK".
func answer(description string, s *oasSchema) *oasResponse {
	if description == "" {
		description = "OK"
	}
	return &oasResponse{Description: description, Content: oasJSON(s)}
}

func geoJSONAnswer(description string, s *oasSchema) *oasResponse {
	return &oasResponse{Description: description, Content: map[string]oasMediaType{"application/geo+json": {Schema: s}}}
}

func noContent(description string) *oasResponse { return &oasResponse{Description: description} }

// responses keys answers by status.
func responses(pairs ...any) map[string]*oasResponse {
	m := map[string]*oasResponse{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[strconv.Itoa(pairs[i].(int))] = pairs[i+1].(*oasResponse)
	}
	return m
}

// v1Operations is every /v1 route; the route walk in openapi_test.go holds
// it to the routes registered.
func v1Operations(sc *oasSchemas) []v1Operation {
	str := func(d string) *oasSchema { return oasScalar("string", d) }
	gridFeature := func(extra string) *oasSchema {
		props := oasObject("The grid's attributes, and its free attributes besides."+extra,
			"layer", str(""), "code", str(""), "name", str(""), "level", str(""),
			"parent", &oasSchema{Type: "string", Nullable: true, Description: "null for a grid of the coarsest level"},
			"version", oasScalar("integer", ""),
			"valid_from", &oasSchema{Type: "string", Format: "date-time"},
			"valid_to", &oasSchema{Type: "string", Format: "date-time", Nullable: true},
			"people", oasArray(sc.of(gridmap.Person{})))
		props.AdditionalProperties = &oasSchema{}
		return oasObject("A grid as a GeoJSON Feature; id is its code.",
			"type", &oasSchema{Type: "string", Enum: []any{"Feature"}}, "id", str(""),
			"geometry", sc.ofType(geometryType), "properties", props)
	}
	featureCollection := func(feature *oasSchema) *oasSchema {
		return oasObject("A GeoJSON FeatureCollection.", "type", &oasSchema{Type: "string", Enum: []any{"FeatureCollection"}},
			"features", oasArray(feature), "numberReturned", oasScalar("integer", ""),
			"next", &oasSchema{Type: "string", Nullable: true, Description: "the cursor of the next page; null on the last"})
	}
	grid, fc := gridFeature(""), featureCollection(gridFeature(""))
	streamed := oasObject(`A GeoJSON FeatureCollection of grid Features, streamed: {"type": "FeatureCollection", "features": [...]}.`)
	ifMatch := headerParam("If-Match", `the version from the grid's ETag ("3"); a stale one answers 412`)
	reason := queryParam("reason", "string", "why, for the grid's history")
	draft := func(d string) *oasParameter { return queryParam("draft", "boolean", d) }
	changeset, changesetResult := sc.of(gridmap.Changeset{}), sc.of(gridmap.ChangesetResult{})
	coverageItems := oasArray(oasObject("A GeoJSON geometry with the area and the codes involved.",
		"type", str(""), "area_m2", oasScalar("number", ""), "codes", oasArray(str(""))))
	coverageItems.Items.AdditionalProperties = &oasSchema{}
	lookupAnswer := lookupSchema(sc)
	report, reportView := sc.of(gridmap.Report{}), sc.of(reportView{})
	reportFilters := []*oasParameter{
		queryParam("grid", "string", "the primary grid's code"),
		queryParam("bbox", "string", "minLon,minLat,maxLon,maxLat: the location meets the box"),
		queryParam("category", "string", "the category and its subcategories (400 for an unknown one)"),
		queryTime("since", "reported at or after"),
		queryTime("until", "reported before"),
		{Name: "tier", In: "query", Schema: &oasSchema{Type: "string", Enum: anys(dispatch.Tiers)}},
		queryParam("source", "string", "exactly"),
		queryParam("urgent", "boolean", ""),
		queryParam("overdue", "boolean", "true: open and past due_at"),
		queryParam("mine", "boolean", "true: reports whose history names the caller"),
		queryParam("duplicate_of", "integer", "the reports linked to this report as its probable duplicates"),
	}
	category, department := sc.of(gridmap.Category{}), sc.of(gridmap.Department{})
	account, token := sc.of(gridmap.Account{}), sc.of(gridmap.Token{})
	session := sc.of(sessionAnswer{})

	return []v1Operation{
		{method: "POST", path: "/v1/session", op: &oasOperation{Summary: "Sign in",
			Description: "Answers the caller and its CSRF token, and sets the session cookie. 429 with Retry-After while sign-ins are slowed down after failures.",
			RequestBody: jsonBody(oasObject("", "username", str(""), "password", str("")), ""),
			Responses:   responses(200, answer("Signed in", session))},
			fails: []int{400, 401, 429}},
		{method: "GET", path: "/v1/session", op: &oasOperation{Summary: "Who is calling",
			Description: "The caller, with the CSRF token when a session cookie signed it in; 401 for nobody.",
			Responses:   responses(200, answer("The caller", session))},
			fails: []int{401}},
		{method: "DELETE", path: "/v1/session", op: &oasOperation{Summary: "Sign out",
			Responses: responses(204, noContent("Signed out; the cookie is cleared"))}},

		{method: "GET", path: "/v1/users", op: &oasOperation{Summary: "List accounts",
			Responses: responses(200, answer("The accounts", oasObject("", "users", oasArray(account))))}},
		{method: "POST", path: "/v1/users", op: &oasOperation{Summary: "Create an account",
			Description: "Without a password one is generated and answered this once.",
			RequestBody: jsonBody(&oasSchema{AllOf: []*oasSchema{account, oasObject("", "password", str(""))}}, ""),
			Responses:   responses(201, answer("Created", oasObject("", "user", account, "password", str("the generated password, when none was given"))))},
			fails: []int{400, 409}},
		{method: "GET", path: "/v1/users/:username", op: &oasOperation{Summary: "Read an account",
			Responses: responses(200, answer("The account", account))},
			fails: []int{404}},
		{method: "PATCH", path: "/v1/users/:username", op: &oasOperation{Summary: "Change an account",
			Description: "Any of the fields; disabling the account or changing its role, scope or password ends its sessions.",
			RequestBody: jsonBody(sc.of(gridmap.AccountChange{}), ""),
			Responses:   responses(200, answer("The changed account", account))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/tokens", op: &oasOperation{Summary: "List tokens (never their secrets)",
			Responses: responses(200, answer("The tokens", oasObject("", "tokens", oasArray(token))))}},
		{method: "POST", path: "/v1/tokens", op: &oasOperation{Summary: "Create a token",
			Description: "The secret is answered this once and stored only as a hash.",
			RequestBody: jsonBody(oasObject("", "name", str(""), "role", str(""), "scope", sc.of(gridmap.Scope{}),
				"expires_in", str(`a lifetime such as "720h" or "30d"`)), ""),
			Responses: responses(201, answer("Created", oasObject("", "token", token, "secret", str(""))))},
			fails: []int{400, 409}},
		{method: "DELETE", path: "/v1/tokens/:name", op: &oasOperation{Summary: "Revoke a token",
			Responses: responses(204, noContent("Revoked; its next request gets 401"))},
			fails: []int{404}},
		{method: "GET", path: "/v1/audit", op: &oasOperation{Summary: "Read the audit log, newest first",
			Parameters: []*oasParameter{queryParam("actor", "string", ""), queryParam("target", "string", "a path prefix"),
				queryTime("from", ""), queryTime("to", ""), queryParam("limit", "integer", "1 to 1000"),
				queryParam("cursor", "string", "the next of the previous page")},
			Responses: responses(200, answer("A page of entries", oasObject("", "entries", oasArray(sc.of(gridmap.AuditEntry{})),
				"next", str("present while more remain"))))},
			fails: []int{400}},
		{method: "GET", path: "/v1/config", op: &oasOperation{Summary: "How this deployment draws, for the pages",
			Responses: responses(200, answer("", oasObject("", "basemap_style", str(`a MapLibre style URL, or ""`), "time_zone", str(""))))}},

		{method: "GET", path: "/v1/layers", op: &oasOperation{Summary: "List layers",
			Responses: responses(200, answer("The layers", oasObject("", "layers", oasArray(sc.of(gridmap.Layer{})))))}},
		{method: "GET", path: "/v1/layers/:layer", op: &oasOperation{Summary: "Read a layer",
			Responses: responses(200, answer("The layer", sc.of(gridmap.Layer{})))},
			fails: []int{404}},
		{method: "PUT", path: "/v1/layers/:layer", op: &oasOperation{Summary: "Define or redefine a layer",
			RequestBody: jsonBody(sc.of(gridmap.Layer{}), "The layer; counts, data_version and times are read-only."),
			Responses:   responses(200, answer("Replaced", sc.of(gridmap.Layer{})), 201, answer("Created", sc.of(gridmap.Layer{})))},
			fails: []int{400, 409}},
		{method: "GET", path: "/v1/layers/:layer/grids", op: &oasOperation{Summary: "List current grids, a page at a time",
			Parameters: []*oasParameter{queryParam("bbox", "string", "minLon,minLat,maxLon,maxLat"), queryParam("level", "string", ""),
				queryParam("parent", "string", "the parent's code"), queryParam("limit", "integer", "page size, default 100"),
				queryParam("cursor", "string", "the next of the previous page"), draft("true: the draft's grids, as GET /v1/layers/{layer}/draft/grids (editors of the whole layer)")},
			Responses: responses(200, geoJSONAnswer("A page of grids, ordered by code", fc))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/layers/:layer/grids/:code", op: &oasOperation{Summary: "Read a grid",
			Description: "The current version with its people (left out for anonymous callers), or the version valid at `at`. The ETag is the version.",
			Parameters:  []*oasParameter{queryTime("at", ""), headerParam("If-None-Match", "an ETag: 304 when it is still the version")},
			Responses: responses(200, geoJSONAnswer("The grid", grid),
				304, noContent("Not modified"))},
			fails: []int{400, 404}},
		{method: "PUT", path: "/v1/layers/:layer/grids/:code", op: &oasOperation{Summary: "Create or replace a grid",
			Parameters:  []*oasParameter{ifMatch, reason},
			RequestBody: jsonBody(sc.ofType(featureType), "The grid as a GeoJSON Feature."),
			Responses:   responses(200, geoJSONAnswer("Replaced", grid), 201, geoJSONAnswer("Created", grid))},
			fails: []int{400, 404, 412, 413, 422}},
		{method: "DELETE", path: "/v1/layers/:layer/grids/:code", op: &oasOperation{Summary: "End a grid's validity (it stays in history)",
			Parameters: []*oasParameter{ifMatch, reason},
			Responses:  responses(204, noContent("Ended"))},
			fails: []int{400, 404, 412, 422}},
		{method: "GET", path: "/v1/layers/:layer/grids/:code/history", op: &oasOperation{Summary: "Every version of a grid, oldest first",
			Responses: responses(200, geoJSONAnswer("The versions, with author and reason in their properties",
				featureCollection(gridFeature(" History adds author and reason."))))},
			fails: []int{404}},
		{method: "POST", path: "/v1/layers/:layer/changesets", op: &oasOperation{Summary: "Apply edits all or nothing",
			Description: "Operations put, delete, split, merge, move_edge and transfer, each with an optional if_match. 200 also for a dry run, problems included.",
			Parameters:  []*oasParameter{draft("true: edit the draft, as POST /v1/layers/{layer}/draft/changesets (editors of the whole layer)")},
			RequestBody: jsonBody(changeset, ""),
			Responses:   responses(200, answer("The result", changesetResult))},
			fails: []int{400, 404, 412, 413, 422}},
		{method: "GET", path: "/v1/layers/:layer/coverage", op: &oasOperation{Summary: "Gaps, overlaps and parts outside the parent",
			Parameters: []*oasParameter{queryParam("parent", "string", "only under this grid"),
				draft("true: the draft's coverage (editors of the whole layer)")},
			Responses: responses(200, answer("", oasObject("", "gaps", coverageItems, "overlaps", coverageItems, "outside", coverageItems)))},
			fails: []int{400, 404}},
		{method: "PUT", path: "/v1/layers/:layer/grids/:code/people", op: &oasOperation{Summary: "Replace the people responsible for a grid",
			RequestBody: jsonBody(oasObject("An empty list removes everyone.", "people", oasArray(sc.of(gridmap.Person{}))), ""),
			Responses:   responses(200, answer("The people", oasObject("", "people", oasArray(sc.of(gridmap.Person{})))))},
			fails: []int{400, 404}},
		{method: "POST", path: importRoute, op: &oasOperation{Summary: "Import grids from GeoJSON",
			Description: "The body is read as it streams in (up to the import limit). 422 lists every rejected feature unless skip_invalid. With draft=true the grids go to the layer's draft, whose problems are answered instead of refused.",
			Parameters: []*oasParameter{queryParam("level", "string", "the level of every feature (else each feature's level property)"),
				queryParam("code_field", "string", "default code"), queryParam("name_field", "string", "default name"),
				queryParam("parent_field", "string", "default parent"), queryParam("level_field", "string", "default level"),
				queryParam("levels", "string", "comma-separated, coarsest first: create or redefine the layer first"),
				queryParam("kind", "string", "the layer's kind, with levels"),
				queryParam("skip_invalid", "boolean", ""), queryParam("make_valid", "boolean", ""),
				draft("true: load into the layer's draft"), queryParam("reason", "string", "default import")},
			RequestBody: &oasRequestBody{Required: true, Content: map[string]oasMediaType{
				"application/geo+json":     {Schema: oasObject("A GeoJSON FeatureCollection.")},
				"application/geo+json-seq": {Schema: str("A GeoJSON text sequence: one Feature per line.")}}},
			Responses: responses(200, answer("What was done", sc.of(gridmap.ImportResult{})))},
			fails: []int{400, 404, 409, 413, 422}},
		{method: "GET", path: "/v1/layers/:layer/draft", optional: true, op: &oasOperation{Summary: "Summarise the layer's draft",
			Responses: responses(200, answer("Counts and problems", sc.of(gridmap.DraftSummary{})))},
			fails: []int{404}},
		{method: "DELETE", path: "/v1/layers/:layer/draft", optional: true, op: &oasOperation{Summary: "Discard the layer's draft",
			Responses: responses(204, noContent("Discarded"))},
			fails: []int{404}},
		{method: "GET", path: "/v1/layers/:layer/draft/grids", optional: true, op: &oasOperation{Summary: "The draft's grids, streamed",
			Responses: responses(200, geoJSONAnswer("The grids", streamed))},
			fails: []int{404}},
		{method: "POST", path: "/v1/layers/:layer/draft/changesets", optional: true, op: &oasOperation{Summary: "Edit the draft",
			Description: "The result's problems include the overlaps and spills the draft still holds; 422 for what a draft cannot hold either; if_match on draft versions.",
			RequestBody: jsonBody(changeset, ""),
			Responses:   responses(200, answer("The result", changesetResult))},
			fails: []int{400, 404, 412, 413, 422}},
		{method: "POST", path: "/v1/layers/:layer/draft/resolve", optional: true, op: &oasOperation{Summary: "Give an overlap to one grid of the pair",
			RequestBody: jsonBody(sc.of(resolveRequest{}), "overlap: the two codes; give_to: the one that keeps the shared area."),
			Responses:   responses(200, answer("The changeset result", changesetResult))},
			fails: []int{400, 404}},
		{method: "POST", path: "/v1/layers/:layer/publish", optional: true, op: &oasOperation{Summary: "Publish the draft",
			Description: "The draft replaces the published grids in one transaction and is removed. 422 with the problems allow does not accept, 409 when the layer changed since the draft started, 404 without a draft.",
			RequestBody: jsonBody(sc.of(gridmap.Publish{}), `allow: the problem kinds accepted ("overlaps_sibling", "outside_parent", "gap").`),
			Responses:   responses(200, answer("The new versions", sc.of(gridmap.PublishResult{})))},
			fails: []int{400, 404, 409, 422}},
		{method: "GET", path: exportRoute, optional: true, op: &oasOperation{Summary: "Export the grids as a GeoJSON file",
			Description: "Streamed from the database, as an attachment; scoped callers get their subtree. draft=true reads the draft (editors of the whole layer).",
			Parameters: []*oasParameter{{Name: "format", In: "query", Schema: &oasSchema{Type: "string", Enum: []any{"geojson"}}},
				draft("true: the draft's grids")},
			Responses: map[string]*oasResponse{"200": {Description: "The grids",
				Headers: map[string]*oasHeader{"Content-Disposition": {Schema: str(""), Description: `attachment; filename="<layer>.geojson"`}},
				Content: map[string]oasMediaType{"application/geo+json": {Schema: streamed}}}}},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/search", optional: true, op: &oasOperation{Summary: "Find grids and reports by text",
			Description: "Grids by code prefix or name substring, reports by id or external id prefix, in the caller's jurisdiction.",
			Parameters:  []*oasParameter{queryParam("q", "string", ""), queryParam("layer", "string", "")},
			Responses:   responses(200, answer("The hits", sc.of(gridmap.SearchResult{})))},
			fails: []int{400}},

		{method: "GET", path: "/v1/lookup", op: &oasOperation{Summary: "Which grids cover a point",
			Parameters: []*oasParameter{
				{Name: "lon", In: "query", Required: true, Schema: oasScalar("number", "")},
				{Name: "lat", In: "query", Required: true, Schema: oasScalar("number", "")},
				{Name: "crs", In: "query", Schema: &oasSchema{Type: "string", Enum: []any{gridmap.CRSWGS84, gridmap.CRSCGCS2000, gridmap.CRSGCJ02, gridmap.CRSBD09}}},
				queryParam("layer", "string", "only this layer"), queryParam("tolerance_m", "number", ""),
				queryParam("accuracy_m", "number", ""), queryTime("at", "the boundaries valid then")},
			Responses: responses(200, answer("The answer", lookupAnswer))},
			fails: []int{400, 404}},
		{method: "POST", path: "/v1/lookup", op: &oasOperation{Summary: "Look up many points",
			Description: "Answers in input order; one bad point fails the batch with its index. A batch of " + strconv.Itoa(defaultSpaceOrderFrom) +
				" points or more is written whole, with its length, once every point is answered; a smaller one is streamed, and a failure after its answer began cuts the connection." +
				" 503 with Retry-After while batches waiting for their clients to read them hold all the memory they may (or this caller's share of it).",
			RequestBody: jsonBody(oasObject("", "points", oasArray(&oasSchema{Type: "array", Items: oasScalar("number", ""), MinItems: ptr(2), MaxItems: ptr(2)}),
				"crs", str(""), "layer", str(""), "tolerance_m", oasScalar("number", ""), "accuracy_m", oasScalar("number", ""),
				"at", &oasSchema{Type: "string", Format: "date-time"}), "points is required: [[lon, lat], ...]."),
			Responses: responses(200, answer("One answer a point", oasObject("", "results", oasArray(lookupAnswer))))},
			fails: []int{400, 404, 413, 503}},

		{method: "POST", path: "/v1/reports", op: &oasOperation{Summary: "Take a report in",
			Description: "201 with the report and its assignment once durable; 200 with the stored report for a retry with the same external_id and content; 409 with other content.",
			RequestBody: jsonBody(sc.of(reportRequest{}), "location: a GeoJSON geometry."),
			Responses: responses(201, &oasResponse{Description: "Created", Content: oasJSON(report),
				Headers: map[string]*oasHeader{"Location": {Schema: str("")}}},
				200, answer("Seen before", report))},
			fails: []int{400, 409, 413, 422}},
		{method: "GET", path: "/v1/reports", op: &oasOperation{Summary: "List reports, a page at a time",
			Parameters: append([]*oasParameter{queryParam("status", "string", "a status, open or done")}, append(reportFilters,
				&oasParameter{Name: "sort", In: "query", Schema: &oasSchema{Type: "string", Enum: []any{gridmap.SortArrival, gridmap.SortDeadline}}},
				queryParam("limit", "integer", "1 to 1000, default 100"),
				queryParam("cursor", "string", "the next of the previous page, of the same sort"))...),
			Responses: responses(200, answer("A page of reports", oasObject("", "reports", oasArray(reportView), "next", str("present while more remain"))))},
			fails: []int{400}},
		{method: "GET", path: "/v1/recurring", op: &oasOperation{Summary: "Recurring problems (类事): clusters of one category's reports at one place",
			Description: "ST_ClusterDBSCAN per category over the reports reported in [from, to), the largest first. A scoped caller's problems hold only the reports in its subtree.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the reports assigned in this layer (default: all)"),
				queryParam("category", "string", "the category and its subcategories"),
				queryTime("from", "reported at or after (default: 90 days before to)"), queryTime("to", "reported before (default: now)"),
				queryParam("within_m", "number", "the clustering distance in metres, default 30, at most 1000"),
				queryParam("min", "integer", "the fewest reports of a problem, default 10")},
			Responses: responses(200, answer("The problems", oasObject("", "problems", oasArray(sc.of(gridmap.RecurringProblem{})))))},
			fails: []int{400}},
		{method: "GET", path: "/v1/reports/counts", op: &oasOperation{Summary: "Count reports by status",
			Parameters: reportFilters,
			Responses:  responses(200, answer("The counts", sc.of(gridmap.ReportCounts{})))},
			fails: []int{400}},
		{method: "GET", path: "/v1/reports/:id", op: &oasOperation{Summary: "Read a report",
			Responses: responses(200, answer("The report", reportView))},
			fails: []int{404}},
		{method: "POST", path: "/v1/reports/:id/events", op: &oasOperation{Summary: "Move a report through the workflow",
			RequestBody: jsonBody(sc.of(eventRequest{}), "action: register, dispatch, start, resolve, verify, close, reject, escalate, report_in, extend, suspend or resume."),
			Responses:   responses(200, answer("The report", reportView))},
			fails: []int{400, 404, 409}},
		{method: "GET", path: "/v1/reports/:id/events", op: &oasOperation{Summary: "A report's history, oldest first",
			Responses: responses(200, answer("The events", oasObject("", "events", oasArray(sc.of(gridmap.ReportEvent{})))))},
			fails: []int{404}},
		{method: "POST", path: "/v1/tracks", optional: true, op: &oasOperation{Summary: "Send a batch of the calling worker's track points",
			Description: "The worker is the calling account (a token gets 403). Up to 10,000 points a batch (413 past it), each {t, lon, lat, accuracy_m?} or [lon, lat, t, accuracy_m?] in crs (default wgs84); a bad point answers 400 naming its index and nothing is stored. Each point is stored once per account, device and time: a retried batch counts as duplicates. Points older than the retention are counted as expired and not stored.",
			RequestBody: jsonBody(sc.of(gridmap.TrackBatch{}), "crs: wgs84, cgcs2000, gcj02 or bd09."),
			Responses:   responses(200, answer("What became of the points", sc.of(gridmap.TrackResult{})))},
			fails: []int{400, 413}},
		{method: "GET", path: "/v1/workers", optional: true, op: &oasOperation{Summary: "On-duty workers and their last positions",
			Description: "Workers whose last position is at most 15 minutes old, newest first; a scoped caller sees the workers of its subtree.",
			Parameters:  []*oasParameter{queryParam("layer", "string", "only the workers linked to this layer's grids")},
			Responses:   responses(200, answer("The workers", oasObject("", "workers", oasArray(sc.of(gridmap.WorkerPosition{})))))}},
		{method: "GET", path: "/v1/workers/:username/track", optional: true, op: &oasOperation{Summary: "A worker's day played back",
			Description: "The day's points in time order; with Accept: application/geo+json a FeatureCollection with a LineString per stretch without gaps over 5 minutes. 404 for an unknown worker or one outside the caller's scope.",
			Parameters:  []*oasParameter{queryParam("day", "string", "YYYY-MM-DD in the server's time zone (default today)")},
			Responses:   responses(200, answer("The points", oasObject("", "worker", str(""), "day", str(""), "points", oasArray(sc.of(gridmap.TrackPoint{})))))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/patrol/coverage", optional: true, op: &oasOperation{Summary: "Patrol coverage per grid (巡查覆盖率)",
			Description: "Per grid of the level: the share of its area within 50 m of the day's tracks of its workers (accounts linked to it or a grid below it). A day over, of the default level, is measured once and kept (points sent later have it measured again); today and other levels are measured when asked. CSV with Accept: text/csv. A scoped caller gets its subtree's grids.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", patrolLevelParam),
				queryParam("day", "string", "YYYY-MM-DD in the server's time zone (default today)")},
			Responses: responses(200, answer("The coverage", sc.of(gridmap.PatrolCoverage{})))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/patrol", optional: true, op: &oasOperation{Summary: "Patrol coverage per grid, narrowed to a grid or the grids below one",
			Description: "The answer of GET /v1/patrol/coverage for date, of one grid (grid) or of the grids below parent.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("date", "string", "YYYY-MM-DD in the server's time zone (default today)"),
				queryParam("level", "string", patrolLevelParam),
				queryParam("grid", "string", "one grid's code"), queryParam("parent", "string", "the code of a grid whose grids below are answered")},
			Responses: responses(200, answer("The coverage", sc.of(gridmap.PatrolCoverage{})))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/patrol/idle", optional: true, op: &oasOperation{Summary: "Grids nobody patrolled lately",
			Description: "The grids of the default patrol level whose coverage was 0 on each of the last days (yesterday and before), with the last day it was not (null: never, as far as days are kept). CSV with Accept: text/csv.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", "only the default patrol level, which the answer names"),
				queryParam("days", "integer", "1 to 366 (default 7)")},
			Responses: responses(200, answer("The idle grids", sc.of(gridmap.IdleGrids{})))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/assessment", optional: true, op: &oasOperation{Summary: "Assessment of the people in the field (述职评议考核)",
			Description: "Per grid worker: reports filed (and of them closed, on time), days on patrol and points, their grid's mean coverage, check-ins. Per grid: its workers, the reports they filed, its reports' indicators, days measured and patrolled, mean coverage, leaders' visits. Per leader: GET /v1/leaders' figures. Patrol figures are of the days over wholly inside the window. Dispatchers and up; a scoped caller gets its area's. With Accept: text/csv the table of `of`.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", patrolLevelParam),
				queryParam("from", "string", "RFC 3339 (default the start of this month)"), queryParam("to", "string", "RFC 3339 (default now)"),
				queryParam("of", "string", "the table as CSV: workers (default), grids or leaders")},
			Responses: responses(200, answer("The assessment", sc.of(gridmap.Assessment{})))},
			fails: []int{400, 403, 404}},
		{method: "GET", path: "/v1/reports/:id/nearby-workers", optional: true, op: &oasOperation{Summary: "On-duty workers near a report",
			Description: "The on-duty workers of the report's grid and of the grids bordering it at its level, nearest first, with the geodesic distance in metres from their last position.",
			Parameters:  []*oasParameter{queryParam("limit", "integer", "how many of the nearest: 1 to 200, default 20")},
			Responses:   responses(200, answer("The workers", oasObject("", "workers", oasArray(sc.of(gridmap.NearbyWorker{})))))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/stats", op: &oasOperation{Summary: "Indicators per grid, street, district or department",
			Description: "Figures of the reports reported in [from, to), ranked by on-time closure rate; CSV with Accept: text/csv. A scoped caller's figures cover its subtree.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required unless group=department)"),
				queryParam("group", "string", "grid (default), street, district or department"),
				queryParam("level", "string", "a level of the layer, with group=grid"),
				queryParam("from", "string", "RFC 3339: reported at or after"), queryParam("to", "string", "RFC 3339: reported before"),
				queryParam("category", "string", "the category and its subcategories")},
			Responses: responses(200, answer("The indicators", sc.of(gridmap.Stats{})))},
			fails: []int{400}},
		{method: "GET", path: "/v1/stats/flags", op: &oasOperation{Summary: "Flags: grids past a rule (一网格一专项)",
			Description: "Threshold flags (a grid's on-time, closure or rework rate or overdue count past the rules over [from, to), default the 30 days before now) and surge flags (a category's reports of the week before to above mean + surge_sigma × max(sd, 1) of the surge_weeks weeks before). CSV with Accept: text/csv. A scoped caller's flags are its subtree's grids'.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", "a level of the layer (default its finest grid-tier level)"),
				queryParam("from", "string", "RFC 3339: reported at or after"), queryParam("to", "string", "RFC 3339: reported before"),
				queryParam("category", "string", "the category and its subcategories")},
			Responses: responses(200, answer("The flags", sc.of(gridmap.Flags{})))},
			fails: []int{400}},
		{method: "GET", path: "/v1/stats/workload", op: &oasOperation{Summary: "Workload per grid (负载均衡)",
			Description: "Every grid of the level with its households and population (grid attributes), the reports of [from, to) (default the 30 days before now) and those still open, per 1,000 residents and per 100 households, and the load index (per 1,000 residents over the level's mean), highest first. CSV with Accept: text/csv.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", "a level of the layer (default its finest grid-tier level)"),
				queryParam("from", "string", "RFC 3339: reported at or after"), queryParam("to", "string", "RFC 3339: reported before")},
			Responses: responses(200, answer("The workload", sc.of(gridmap.Workload{})))},
			fails: []int{400}},
		{method: "GET", path: "/v1/stats/trend", op: &oasOperation{Summary: "A grid's figures bucket by bucket",
			Description: "Received, registered, closed, closed on time and overdue for the reports of each day, week (from Monday) or month of [from, to) (default the 12 weeks before now), in the server's time zone, every bucket present. At most 400 buckets. CSV with Accept: text/csv.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("code", "string", "the grid (required)"),
				queryParam("from", "string", "RFC 3339: reported at or after"), queryParam("to", "string", "RFC 3339: reported before"),
				queryParam("bucket", "string", "day, week (default) or month"),
				queryParam("category", "string", "the category and its subcategories")},
			Responses: responses(200, answer("The trend", sc.of(gridmap.Trend{})))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/stats/rules", op: &oasOperation{Summary: "The rules flags are raised at",
			Responses: responses(200, answer("The rules", sc.of(gridmap.IndicatorRules{})))}},
		{method: "PUT", path: "/v1/stats/rules", op: &oasOperation{Summary: "Replace the rules flags are raised at (admins)",
			RequestBody: jsonBody(sc.of(gridmap.IndicatorRules{}), "Every field: rates from 0 to 1, surge_sigma above 0, surge_weeks 2 to 52, counts 0 or more."),
			Responses:   responses(200, answer("The rules", sc.of(gridmap.IndicatorRules{})))},
			fails: []int{400}},
		{method: "GET", path: eventsRoute, op: &oasOperation{Summary: "The live feed of report and boundary events",
			Description: "Server-sent events; each id is the event's number in the feed. Resumes after Last-Event-ID (or since) with every later event exactly once.",
			Parameters: []*oasParameter{headerParam("Last-Event-ID", "the id of the last event received"),
				queryParam("since", "integer", "as Last-Event-ID")},
			Responses: map[string]*oasResponse{"200": {Description: "The stream",
				Content: map[string]oasMediaType{"text/event-stream": {Schema: str("")}}}}},
			fails: []int{400}},

		{method: "GET", path: "/v1/categories", op: &oasOperation{Summary: "The responsibility list",
			Responses: responses(200, answer("", oasObject("", "categories", oasArray(category))))}},
		{method: "GET", path: "/v1/categories/:code", op: &oasOperation{Summary: "Read a category",
			Responses: responses(200, answer("The category", category))},
			fails: []int{404}},
		{method: "PUT", path: "/v1/categories/:code", op: &oasOperation{Summary: "Define a category",
			RequestBody: jsonBody(category, ""),
			Responses:   responses(200, answer("Replaced", category), 201, answer("Created", category))},
			fails: []int{400}},
		{method: "GET", path: "/v1/calendar", op: &oasOperation{Summary: "The dates that break the weekday rule",
			Responses: responses(200, answer("", oasObject("", "days", oasArray(sc.of(gridmap.CalendarDay{})))))}},
		{method: "PUT", path: "/v1/calendar/:date", op: &oasOperation{Summary: "Mark a date working or not",
			Parameters: []*oasParameter{{Name: "date", In: "path", Required: true, Schema: &oasSchema{Type: "string", Format: "date"}}},
			RequestBody: jsonBody(oasObject("", "working", oasScalar("boolean", "false for a holiday, true for a weekend day worked in exchange; required"),
				"name", str("")), ""),
			Responses: responses(200, answer("The day", sc.of(gridmap.CalendarDay{})))},
			fails: []int{400}},
		{method: "GET", path: "/v1/departments", op: &oasOperation{Summary: "List departments",
			Responses: responses(200, answer("", oasObject("", "departments", oasArray(department))))}},
		{method: "GET", path: "/v1/departments/:code", op: &oasOperation{Summary: "Read a department",
			Responses: responses(200, answer("The department", department))},
			fails: []int{404}},
		{method: "PUT", path: "/v1/departments/:code", op: &oasOperation{Summary: "Define a department",
			Description: `webhook_secret is write-only: a body without it keeps the stored one, "" removes it.`,
			RequestBody: jsonBody(sc.of(departmentRequest{}), ""),
			Responses:   responses(200, answer("Replaced", department), 201, answer("Created", department))},
			fails: []int{400}},
	}
}

// lookupSchema is the answer of GET /v1/lookup, as AppendLookupJSON writes
// it.
func lookupSchema(sc *oasSchemas) *oasSchema {
	ref := sc.of(gridmap.GridRef{})
	layer := oasObject("",
		"chain", &oasSchema{Type: "array", Items: ref, Description: "root first, finest last; empty outside every grid"},
		"people", oasArray(sc.of(gridmap.Person{})),
		"co_owners", oasArray(sc.of(gridmap.CoOwner{})),
		"nearest", sc.of(gridmap.NearestGrid{}),
		"data_version", &oasSchema{Type: "integer", Format: "int64"})
	return oasObject("", "lon", oasScalar("number", "as given"), "lat", oasScalar("number", "as given"),
		"crs", oasScalar("string", "present for a system other than wgs84"),
		"wgs84", &oasSchema{Type: "array", Items: oasScalar("number", ""), MinItems: ptr(2), MaxItems: ptr(2), Description: "the point converted, with crs"},
		"layers", &oasSchema{Type: "object", AdditionalProperties: layer, Description: "by layer id"})
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func ptr[T any](v T) *T { return &v }
