package cql2

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

var testProperties = map[string]Property{
	"name":       {`name`, String},
	"code":       {`code`, String},
	"households": {`((attributes->>'households')::numeric)`, Number},
	"floors":     {`floors`, Integer},
	"active":     {`active`, Boolean},
	"updated":    {`updated_at`, Timestamp},
	"day":        {`survey_day`, Date},
	"geom":       {`geom`, Geometry},
	"名称":         {`name_zh`, String},
	"my prop":    {`my_prop`, String},
	`we"ird`:     {`weird`, String},
	"a.b:c":      {`abc`, String},
}

func testResolver(name string) (Property, bool) {
	p, ok := testProperties[name]
	return p, ok
}

func translate(filter string) (string, []any, error) {
	e, err := Parse(filter)
	if err != nil {
		return "", nil, err
	}
	var args []any
	sql, err := SQL(e, testResolver, &args)
	return sql, args, err
}

func TestSQL(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		filter string
		sql    string
		args   []any
	}{
		{"equal string", `name = 'x'`, `name = $1::text`, []any{"x"}},
		{"not equal integer", `floors <> 3`, `floors <> $1::bigint`, []any{int64(3)}},
		{"less decimal", `households < 2.5`, `((attributes->>'households')::numeric) < $1::double precision`, []any{2.5}},
		{"less or equal negative", `households <= -10`, `((attributes->>'households')::numeric) <= $1::bigint`, []any{int64(-10)}},
		{"greater exponent", `households > 1.5e3`, `((attributes->>'households')::numeric) > $1::double precision`, []any{1500.0}},
		{"greater or equal", `floors >= 0`, `floors >= $1::bigint`, []any{int64(0)}},
		{"integer property with decimal", `floors = 2.5`, `floors = $1::double precision`, []any{2.5}},
		{"boolean", `active = TRUE`, `active = $1::boolean`, []any{true}},
		{"boolean false lower case", `active <> false`, `active <> $1::boolean`, []any{false}},
		{"timestamp", `updated > TIMESTAMP('2024-01-02T03:04:05Z')`, `updated_at > $1::timestamptz`, []any{ts}},
		{"timestamp with offset", `updated < timestamp('2024-01-02T05:04:05+02:00')`, `updated_at < $1::timestamptz`, []any{ts}},
		{"date", `day = DATE('2024-01-02')`, `survey_day = $1::date`, []any{day}},
		{"boolean literal alone", `TRUE`, `$1::boolean`, []any{true}},
		{"OR binds looser than AND", `name = 'a' OR name = 'b' AND floors = 1`,
			`(name = $1::text OR (name = $2::text AND floors = $3::bigint))`, []any{"a", "b", int64(1)}},
		{"parentheses", `(name = 'a' OR name = 'b') AND floors = 1`,
			`((name = $1::text OR name = $2::text) AND floors = $3::bigint)`, []any{"a", "b", int64(1)}},
		{"NOT binds tighter than AND", `NOT name = 'a' AND floors = 1`,
			`(NOT (name = $1::text) AND floors = $2::bigint)`, []any{"a", int64(1)}},
		{"NOT of a group", `NOT (name = 'a' OR floors = 1)`,
			`NOT ((name = $1::text OR floors = $2::bigint))`, []any{"a", int64(1)}},
		{"chains flatten", `floors = 1 AND floors = 2 AND floors = 3`,
			`(floors = $1::bigint AND floors = $2::bigint AND floors = $3::bigint)`, []any{int64(1), int64(2), int64(3)}},
		{"keywords in any case", `name like 'a%' aNd NOT floors BeTwEeN 1 and 2 Or active is not null`,
			`((name LIKE $1::text AND NOT ((floors BETWEEN $2::bigint AND $3::bigint))) OR active IS NOT NULL)`,
			[]any{"a%", int64(1), int64(2)}},
		{"is null", `code IS NULL`, `code IS NULL`, nil},
		{"is not null geometry", `geom IS NOT NULL`, `geom IS NOT NULL`, nil},
		{"like", `name LIKE 'Bei_ing%'`, `name LIKE $1::text`, []any{"Bei_ing%"}},
		{"like with escape", `name LIKE '100\%'`, `name LIKE $1::text`, []any{`100\%`}},
		{"not like", `name NOT LIKE '%x'`, `name NOT LIKE $1::text`, []any{"%x"}},
		{"between", `households BETWEEN 1 AND 9.5`,
			`(((attributes->>'households')::numeric) BETWEEN $1::bigint AND $2::double precision)`, []any{int64(1), 9.5}},
		{"not between", `floors NOT BETWEEN -1 AND 1`, `(floors NOT BETWEEN $1::bigint AND $2::bigint)`, []any{int64(-1), int64(1)}},
		{"in", `code IN ('a', 'b', 'c')`, `code IN ($1::text, $2::text, $3::text)`, []any{"a", "b", "c"}},
		{"not in", `floors NOT IN (1, 2)`, `floors NOT IN ($1::bigint, $2::bigint)`, []any{int64(1), int64(2)}},
		{"quoted identifier", `"my prop" = 'v'`, `my_prop = $1::text`, []any{"v"}},
		{"quoted identifier with doubled quote", `"we""ird" = 'v'`, `weird = $1::text`, []any{"v"}},
		{"quoted keyword-free name", `"name" = 'v'`, `name = $1::text`, []any{"v"}},
		{"identifier with dot and colon", `a.b:c = 'v'`, `abc = $1::text`, []any{"v"}},
		{"chinese identifier and value", `名称 = '北京'`, `name_zh = $1::text`, []any{"北京"}},
		{"escaped quote", `name = 'it''s'`, `name = $1::text`, []any{"it's"}},
		{"empty string", `name = ''`, `name = $1::text`, []any{""}},
		{"property-property", `floors < households`, `floors < ((attributes->>'households')::numeric)`, nil},
		{"literal first", `3 < floors`, `$1::bigint < floors`, []any{int64(3)}},
		{"s_intersects point", `S_INTERSECTS(geom, POINT(116.4 39.9))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"POINT(116.4 39.9)"}},
		{"s_intersects literal first", `s_intersects(POLYGON((0 0, 1 0, 1 1, 0 0)), geom)`,
			`ST_Intersects(ST_GeomFromText($1::text, 4326), geom)`, []any{"POLYGON((0 0,1 0,1 1,0 0))"}},
		{"polygon with hole", `S_INTERSECTS(geom, POLYGON((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1)))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"POLYGON((0 0,10 0,10 10,0 0),(1 1,2 1,2 2,1 1))"}},
		{"multipolygon", `S_INTERSECTS(geom, MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0)), ((-5 -5, -4 -5, -4 -4, -5 -5))))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`,
			[]any{"MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((-5 -5,-4 -5,-4 -4,-5 -5)))"}},
		{"linestring", `S_INTERSECTS(geom, LINESTRING(-180 -90, 180 90))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"LINESTRING(-180 -90,180 90)"}},
		{"multipoint without inner parentheses", `S_INTERSECTS(geom, MULTIPOINT(1 2, 3 4))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"MULTIPOINT((1 2),(3 4))"}},
		{"multipoint with inner parentheses", `S_INTERSECTS(geom, MULTIPOINT((1 2), (3 4)))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"MULTIPOINT((1 2),(3 4))"}},
		{"multilinestring", `S_INTERSECTS(geom, MULTILINESTRING((1 2, 3 4), (5 6, 7 8)))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"MULTILINESTRING((1 2,3 4),(5 6,7 8))"}},
		{"geometry collection", `S_INTERSECTS(geom, GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1)))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))"}},
		{"point with elevation", `S_INTERSECTS(geom, POINT Z(1 2 300))`,
			`ST_Intersects(geom, ST_GeomFromText($1::text, 4326))`, []any{"POINT Z(1 2 300)"}},
		{"bbox", `S_INTERSECTS(geom, BBOX(116, 39.5, 117, 40.5))`,
			`ST_Intersects(geom, ST_MakeEnvelope($1::double precision, $2::double precision, $3::double precision, $4::double precision, 4326))`,
			[]any{116.0, 39.5, 117.0, 40.5}},
		{"bbox with elevations", `S_INTERSECTS(geom, BBOX(116, 39.5, -10, 117, 40.5, 100))`,
			`ST_Intersects(geom, ST_MakeEnvelope($1::double precision, $2::double precision, $3::double precision, $4::double precision, 4326))`,
			[]any{116.0, 39.5, 117.0, 40.5}},
		{"bbox across the antimeridian", `S_INTERSECTS(geom, BBOX(170, -10, -170, 10))`,
			`ST_Intersects(geom, ST_Collect(ST_MakeEnvelope($1::double precision, $2::double precision, $3::double precision, $4::double precision, 4326), ST_MakeEnvelope($5::double precision, $6::double precision, $7::double precision, $8::double precision, 4326)))`,
			[]any{170.0, -10.0, 180.0, 10.0, -180.0, -10.0, -170.0, 10.0}},
		{"whitespace everywhere", " \t\nname\n=\t'x'  ", `name = $1::text`, []any{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args, err := translate(tt.filter)
			if err != nil {
				t.Fatalf("translate(%q): %v", tt.filter, err)
			}
			if sql != tt.sql {
				t.Errorf("translate(%q)\n got SQL %s\nwant SQL %s", tt.filter, sql, tt.sql)
			}
			if !reflect.DeepEqual(args, tt.args) {
				t.Errorf("translate(%q)\n got args %#v\nwant args %#v", tt.filter, args, tt.args)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	deep := strings.Repeat("(", MaxDepth+1) + "name = 'a'" + strings.Repeat(")", MaxDepth+1)
	tests := []struct {
		name   string
		filter string
		want   []string // substrings of the error message
	}{
		{"unknown property", `foo = 1`, []string{`property "foo"`, "at character 1", "queryables"}},
		{"unknown quoted property", `"name; DROP TABLE grids" = 'a'`, []string{`property "name; DROP TABLE grids"`, "queryables"}},
		{"unknown property deep inside", `name = 'a' AND (floors = 1 OR bar IS NULL)`, []string{`property "bar"`, "at character 31"}},
		{"spatial function not supported", `S_CONTAINS(geom, POINT(1 2))`, []string{"S_CONTAINS", "does not support", "supported:", "S_INTERSECTS"}},
		{"s_within", `s_within(geom, BBOX(0, 0, 1, 1))`, []string{"S_WITHIN", "does not support"}},
		{"temporal function", `T_BEFORE(updated, TIMESTAMP('2024-01-01T00:00:00Z'))`, []string{"T_BEFORE", "does not support"}},
		{"interval", `updated = INTERVAL('2024-01-01', '2024-02-01')`, []string{"INTERVAL", "does not support"}},
		{"array function", `A_CONTAINS(tags, ('a'))`, []string{"A_CONTAINS", "does not support"}},
		{"casei", `CASEI(name) = casei('x')`, []string{"CASEI", "does not support"}},
		{"accenti", `ACCENTI(name) = 'x'`, []string{"ACCENTI", "does not support"}},
		{"custom function", `upper(name) = 'X'`, []string{"function upper", "does not support"}},
		{"envelope", `S_INTERSECTS(geom, ENVELOPE(0, 1, 1, 0))`, []string{"ENVELOPE", "BBOX(west, south, east, north)"}},
		{"arithmetic", `floors + 1 > 2`, []string{"arithmetic (+)", "does not support", "at character 8"}},
		{"arithmetic on the right", `floors > 2 * 3`, []string{"arithmetic (*)"}},
		{"div", `floors div 2 = 1`, []string{"arithmetic (div)"}},
		{"bang equals", `name != 'a'`, []string{"<>", "at character 6"}},
		{"number with string property", `name = 3`, []string{`property "name" (string)`, "the number 3", "without quotes"}},
		{"string with number property", `households = '12'`, []string{`property "households" (number)`, "the string '12'", "without quotes"}},
		{"date with timestamp property", `updated = DATE('2024-01-02')`, []string{"timestamp", "TIMESTAMP("}},
		{"boolean ordering", `active < TRUE`, []string{"only with = or <>"}},
		{"geometry compared", `geom = 'POINT(1 2)'`, []string{`property "geom"`, "S_INTERSECTS"}},
		{"like on a number", `floors LIKE '1%'`, []string{"LIKE matches strings", `property "floors"`}},
		{"between on strings", `name BETWEEN 'a' AND 'c'`, []string{"BETWEEN compares numbers", `property "name"`}},
		{"in with mixed types", `code IN ('a', 2)`, []string{"the number 2"}},
		{"s_intersects on a string", `S_INTERSECTS(name, POINT(1 2))`, []string{"S_INTERSECTS takes geometries", `property "name"`}},
		{"longitude out of range", `S_INTERSECTS(geom, POINT(200 10))`, []string{"(200 10)", "longitude -180..180"}},
		{"latitude out of range", `S_INTERSECTS(geom, POINT(10 -95))`, []string{"(10 -95)", "latitude -90..90"}},
		{"bbox out of range", `S_INTERSECTS(geom, BBOX(0, 0, 1, 91))`, []string{"BBOX", "outside"}},
		{"bbox south north of north", `S_INTERSECTS(geom, BBOX(0, 10, 1, 5))`, []string{"south edge 10", "north edge 5"}},
		{"bbox with five numbers", `S_INTERSECTS(geom, BBOX(0, 0, 1, 1, 2))`, []string{"4 numbers", "found 5"}},
		{"polygon ring not closed", `S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1, 0 1)))`, []string{"not closed"}},
		{"polygon ring too short", `S_INTERSECTS(geom, POLYGON((0 0, 1 0, 0 0)))`, []string{"at least 4 coordinates"}},
		{"linestring of one point", `S_INTERSECTS(geom, LINESTRING(0 0))`, []string{"at least 2 coordinates"}},
		{"mixed dimensions", `S_INTERSECTS(geom, LINESTRING(0 0, 1 1 1))`, []string{"mixes coordinates"}},
		{"infinite number", `households > 1e999`, []string{"1e999", "not a finite number"}},
		{"bad timestamp", `updated > TIMESTAMP('yesterday')`, []string{"TIMESTAMP('yesterday')", "YYYY-MM-DDTHH:MM:SSZ"}},
		{"bad date", `day > DATE('2024-13-01')`, []string{"DATE('2024-13-01')"}},
		{"trailing garbage", `name = 'a' xyz`, []string{`unexpected "xyz"`, "at character 12"}},
		{"trailing garbage after chinese", `名称 = 'a' b`, []string{`unexpected "b"`, "at character 10"}},
		{"unterminated string", `name = 'abc`, []string{"no closing '", "at character 8"}},
		{"unterminated quoted name", `"name = 'abc'`, []string{"no closing \"", "at character 1"}},
		{"missing closing parenthesis", `(name = 'a'`, []string{`expected ")"`, "end of filter"}},
		{"extra closing parenthesis", `name = 'a')`, []string{`unexpected ")"`, "at character 11"}},
		{"empty filter", ``, []string{"ends where a property or a value was expected"}},
		{"keyword as property", `and = 1`, []string{"keyword AND", `"and"`}},
		{"compare with NULL", `name = NULL`, []string{"IS NULL", "at character 8"}},
		{"property alone", `active`, []string{"alone is not a condition"}},
		{"missing operator", `name 'a'`, []string{"expected a comparison operator", "at character 6"}},
		{"NOT without LIKE, BETWEEN or IN", `name NOT = 'a'`, []string{"expected LIKE, BETWEEN or IN after NOT"}},
		{"IS without NULL", `name IS 'a'`, []string{`expected "NULL"`}},
		{"unknown character", `name = 'a' ; DROP TABLE grids`, []string{"unexpected character ';'", "at character 12"}},
		{"too deep", deep, []string{"nests more than 100 levels"}},
		{"too many NOTs", strings.Repeat("NOT ", 200) + "active = TRUE", []string{"nests more than 100 levels"}},
		{"too deep geometry collection", `S_INTERSECTS(geom, ` + strings.Repeat("GEOMETRYCOLLECTION(", 101) + "POINT(1 2)" + strings.Repeat(")", 102),
			[]string{"nests more than 100 levels"}},
		{"too long", "name = '" + strings.Repeat("a", MaxLength) + "'", []string{"limit is 65536"}},
		{"invalid utf-8", "name = '\xff'", []string{"not valid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, _, err := translate(tt.filter)
			if err == nil {
				t.Fatalf("translate(%q) = %q, want an error", tt.filter, sql)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("translate(%q) error %q does not contain %q", tt.filter, err, w)
				}
			}
		})
	}
}

func TestNestingAtTheLimit(t *testing.T) {
	filter := strings.Repeat("(", MaxDepth) + "name = 'a'" + strings.Repeat(")", MaxDepth)
	sql, args, err := translate(filter)
	if err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	if sql != `name = $1::text` || len(args) != 1 {
		t.Errorf("got %q %v", sql, args)
	}
}

// TestInjectionIsData shows that hostile text in values reaches the query
// only as parameter values, and never as SQL text.
func TestInjectionIsData(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		value  any
	}{
		{"quote and comment", `name = 'x''); DROP TABLE grids; --'`, "x'); DROP TABLE grids; --"},
		{"like pattern", `name LIKE '%'' OR 1=1 --'`, "%' OR 1=1 --"},
		{"in list", `code IN ('a'' OR ''1''=''1')`, "a' OR '1'='1"},
		{"dollar quoting", `name = '$$; DROP TABLE grids; $$'`, "$$; DROP TABLE grids; $$"},
		{"backslash", `name = '\'' OR 1=1 --'`, `\' OR 1=1 --`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args, err := translate(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(args) != 1 || args[0] != tt.value {
				t.Fatalf("args = %#v, want the single value %#v", args, tt.value)
			}
			for _, bad := range []string{"DROP", "grids", "--", ";", "'", "OR", "$$"} {
				if strings.Contains(sql, bad) {
					t.Errorf("SQL %q contains %q", sql, bad)
				}
			}
		})
	}
}

func TestArgsAppendToCallerParameters(t *testing.T) {
	e, err := Parse(`name = 'a' AND floors IN (1, 2)`)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{"layer", 7}
	sql, err := SQL(e, testResolver, &args)
	if err != nil {
		t.Fatal(err)
	}
	if want := `(name = $3::text AND floors IN ($4::bigint, $5::bigint))`; sql != want {
		t.Errorf("got %s, want %s", sql, want)
	}
	if want := []any{"layer", 7, "a", int64(1), int64(2)}; !reflect.DeepEqual(args, want) {
		t.Errorf("got args %#v, want %#v", args, want)
	}
}

func TestArgsUnchangedOnError(t *testing.T) {
	e, err := Parse(`name = 'a' AND nope = 1`)
	if err != nil {
		t.Fatal(err)
	}
	args := []any{"layer"}
	if _, err := SQL(e, testResolver, &args); err == nil {
		t.Fatal("want an error for the unknown property")
	}
	if !reflect.DeepEqual(args, []any{"layer"}) {
		t.Errorf("args = %#v, want them as they were", args)
	}
}

func TestString(t *testing.T) {
	tests := []struct{ filter, want string }{
		{`name = 'a' or NAME = 'b' and floors = 1`, `(name = 'a' OR (NAME = 'b' AND floors = 1))`},
		{`not (a = 1)`, `NOT a = 1`},
		{`"my prop" LIKE 'it''s%'`, `"my prop" LIKE 'it''s%'`},
		{`"and" IS NOT NULL`, `"and" IS NOT NULL`},
		{`x not in (1, -2.5, 1e21)`, `x NOT IN (1, -2.5, 1e+21)`},
		{`x BETWEEN 1 AND 2`, `x BETWEEN 1 AND 2`},
		{`t > timestamp('2024-01-02T05:04:05+02:00') AND d = date('2024-01-02')`,
			`(t > TIMESTAMP('2024-01-02T03:04:05Z') AND d = DATE('2024-01-02'))`},
		{`s_intersects(g, bbox(1,2,3,4))`, `S_INTERSECTS(g, BBOX(1, 2, 3, 4))`},
		{`s_intersects(g, point z (1 2 3))`, `S_INTERSECTS(g, POINT Z(1 2 3))`},
	}
	for _, tt := range tests {
		e, err := Parse(tt.filter)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.filter, err)
			continue
		}
		if got := e.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.filter, got, tt.want)
		}
		if _, err := Parse(e.String()); err != nil {
			t.Errorf("Parse(%q) of the canonical text: %v", e.String(), err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`name = 'x''); DROP TABLE grids; --'`,
		`name = 'a' OR name = 'b' AND NOT floors BETWEEN 1 AND 2`,
		`code NOT IN ('a', 'b') AND households >= -1.5e3 AND "my prop" LIKE 'x\%%'`,
		`S_INTERSECTS(geom, MULTIPOLYGON(((0 0, 1 0, 1 1, 0 0))))`,
		`S_INTERSECTS(BBOX(170, -10, -170, 10), geom) OR geom IS NULL`,
		`S_INTERSECTS(geom, GEOMETRYCOLLECTION(POINT Z(1 2 3), MULTIPOINT((1 2 3))))`,
		`updated > TIMESTAMP('2024-01-02T03:04:05Z') AND day = DATE('2024-01-02')`,
		`((((名称 = '北京'))))`,
		`S_CONTAINS(geom, POINT(1 2))`,
		`floors + 1 > 2`,
		`TRUE`,
	} {
		f.Add(seed)
	}
	// Every name resolves, with a type chosen by its length, so fuzzing
	// reaches the translator's type checks.
	resolve := func(name string) (Property, bool) {
		return Property{SQL: "col", Type: Type(len(name)%7 + 1)}, true
	}
	f.Fuzz(func(t *testing.T, text string) {
		e, err := Parse(text)
		if err != nil {
			return
		}
		canonical := e.String()
		e2, err := Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(%q) of the canonical text of %q: %v", canonical, text, err)
		}
		if again := e2.String(); again != canonical {
			if e3, err := Parse(again); err != nil || e3.String() != again {
				t.Fatalf("canonical text is not stable: %q, then %q", canonical, again)
			}
		}
		var args []any
		sql, err := SQL(e, resolve, &args)
		if err != nil {
			if len(args) != 0 {
				t.Fatalf("SQL failed but left args %v", args)
			}
			return
		}
		if strings.ContainsAny(sql, `'";`) {
			t.Fatalf("SQL for %q contains quoted or separated text: %s", text, sql)
		}
	})
}
