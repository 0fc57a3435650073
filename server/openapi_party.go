package server

import "github.com/gridmap/gridmap"

// partyOperations are the routes of party organisations, joint meetings
// and leaders, for the OpenAPI document; each is registered only when its
// service is configured.
func partyOperations(sc *oasSchemas) []v1Operation {
	str := func(d string) *oasSchema { return oasScalar("string", d) }
	party, meeting := sc.of(gridmap.PartyOrg{}), sc.of(gridmap.Meeting{})
	assignments, stats := sc.of(gridmap.LeaderAssignments{}), sc.of(gridmap.LeaderStats{})
	ifMatch := headerParam("If-Match", `the version from the organisation's ETag ("3"; "0" while there is none); a stale one answers 412`)
	party.Description = `kind: branch (功能型党支部) or group (党小组); street: the code of the street-tier grid above whose organisation it belongs to (left out: the nearest one); secretary: {"name", "phone"} or just the name.`
	when := func(d string) *oasSchema { return &oasSchema{Type: "string", Format: "date-time", Description: d} }
	checkIn := oasObject(`Where the leader is: lon and lat, or location (a GeoJSON Point); t (or at): when, default now, at most a week ago.`,
		"person", str("if sent, the signed-in account: its username or its linked person's name (else 403)"),
		"client_id", str("the client's id for this check-in, unique per account: a retry with the same id stores nothing and answers the stored one (200)"),
		"lon", oasScalar("number", ""), "lat", oasScalar("number", ""), "location", sc.ofType(geometryType),
		"crs", str("wgs84 (default), cgcs2000, gcj02 or bd09: converted to WGS84 first"),
		"accuracy_m", oasScalar("number", "metres, 0 to 5000; past 100 it widens no grid"), "t", when("when; default now"),
		"at", when("the same as t (API.md's name); send one of the two"),
		"note", str(""), "photo_url", str("http:// or https:// only"))
	return []v1Operation{
		{method: "GET", path: "/v1/layers/:layer/grids/:code/party", optional: true, op: &oasOperation{Summary: "Read a grid's party organisation",
			Description: "The ETag is its version.", Tags: []string{"party"},
			Responses: responses(200, answer("The organisation", party))},
			fails: []int{403, 404}},
		{method: "PUT", path: "/v1/layers/:layer/grids/:code/party", optional: true, op: &oasOperation{Summary: "Create or replace a grid's party organisation",
			Description: "One per grid of a comprehensive layer; audit-logged. Read-only fields sent back are ignored.", Tags: []string{"party"},
			Parameters: []*oasParameter{ifMatch}, RequestBody: jsonBody(party, ""),
			Responses: responses(200, answer("Replaced", party), 201, answer("Created", party))},
			fails: []int{400, 403, 404, 412}},
		{method: "DELETE", path: "/v1/layers/:layer/grids/:code/party", optional: true, op: &oasOperation{Summary: "Remove a grid's party organisation",
			Tags: []string{"party"}, Parameters: []*oasParameter{ifMatch}, Responses: responses(204, noContent("Removed"))},
			fails: []int{400, 403, 404, 412}},
		{method: "GET", path: "/v1/party", optional: true, op: &oasOperation{Summary: "Party organisation coverage of a level (党组织覆盖率)",
			Description: "Every current grid of the level with its organisation (null without); CSV with Accept: text/csv. A scoped caller's grids are its subtree's.",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"),
				queryParam("level", "string", "a level of the layer (default its finest grid-tier level)"),
				queryParam("missing", "boolean", "true: list only the grids without an organisation (the counts stay whole)")},
			Responses: responses(200, answer("The coverage", sc.of(gridmap.PartyCoverage{})))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/party/meetings", optional: true, op: &oasOperation{Summary: "Joint meetings, newest first",
			Parameters: []*oasParameter{queryParam("layer", "string", "the comprehensive layer (required)"), queryParam("street", "string", "one street's")},
			Responses:  responses(200, answer("The meetings", oasObject("", "meetings", oasArray(meeting))))},
			fails: []int{400, 403, 404}},
		{method: "POST", path: "/v1/party/meetings", optional: true, op: &oasOperation{Summary: "Record a street's joint meeting (会商研判, 提级办理)",
			Description: "Each item must be an open report of the district tier or above in the street: it gets a consult event, and with escalate true is handed up a tier as POST /v1/reports/{id}/events escalate would. A report that may not be taken up answers 422 naming it, and nothing is recorded.",
			RequestBody: jsonBody(meeting, "id, created_by, created_at and the items' event_id and tier are read-only."),
			Responses:   responses(201, answer("Recorded", meeting))},
			fails: []int{400, 403, 404, 422}},
		{method: "GET", path: "/v1/leaders", optional: true, op: &oasOperation{Summary: "Leaders' figures over a window",
			Description: "Per leader: grids, required visits (visits_per_month prorated over the window month by month), visits, outside check-ins, grids not visited, on-site reports. CSV with Accept: text/csv.",
			Parameters: []*oasParameter{queryParam("layer", "string", "leaders with a grid in this layer"),
				queryParam("from", "string", "RFC 3339 (default the start of this month)"), queryParam("to", "string", "RFC 3339 (default now)")},
			Responses: responses(200, answer("The figures", stats))},
			fails: []int{400, 404}},
		{method: "GET", path: "/v1/leaders/:username/assignments", optional: true, op: &oasOperation{Summary: "A leader's grids",
			Description: "The grids GET /v1/leaders shows; a scoped caller reads only leaders with a grid in its area, and only those grids (a leader reads all its own). One 404 for an unknown account, one that is not a leader and one outside the caller's area.",
			Responses:   responses(200, answer("The assignments", assignments))},
			fails: []int{404}},
		{method: "PUT", path: "/v1/leaders/:username/assignments", optional: true, op: &oasOperation{Summary: "Give an account grids to look after (包联)",
			Description: "Any account; an empty list of grids makes it a leader no more.",
			RequestBody: jsonBody(oasObject("", "grids", oasArray(oasObject("", "layer", str(""), "code", str(""))),
				"visits_per_month", oasScalar("integer", "0 to 100")), ""),
			Responses: responses(200, answer("The assignments", assignments))},
			fails: []int{400, 404}},
		{method: "POST", path: "/v1/checkins", optional: true, op: &oasOperation{Summary: "Check in where the signed-in leader is (下沉报到)",
			Description: "A visit of one grid: the finest of the leader's grids covering the point (a grid below an assigned one lies inside it), else the nearest within max(the layer's tolerance_m, min(accuracy_m, 100)) metres. Otherwise outside, with the distance to the nearest, and imprecise: true when accuracy_m was past 100 m. Reports the leader files, resolves or closes within 2 hours of a visit, in the visited grid, count as its on-site work.",
			RequestBody: jsonBody(checkIn, ""),
			Responses:   responses(201, answer("Recorded", sc.of(gridmap.CheckIn{})), 200, answer("Stored before under this client_id", sc.of(gridmap.CheckIn{})))},
			fails: []int{400, 403}},
	}
}
