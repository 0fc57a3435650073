package cql2

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Type is the kind of value a queryable holds; it decides which literals and
// operators the filter may use with it.
type Type int

// The types of queryables. Integer and Number compare with each other.
const (
	String Type = iota + 1
	Number
	Integer
	Boolean
	Timestamp
	Date
	Geometry
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Number:
		return "number"
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	case Timestamp:
		return "timestamp"
	case Date:
		return "date"
	case Geometry:
		return "geometry"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Property says how one queryable maps to SQL.
//
// SQL is an expression the caller takes from its own whitelist, never from
// the filter. It is used as an operand of comparisons as it stands, so it
// must be a column reference, a function call or a parenthesized expression,
// and it must yield the SQL type that matches Type: text for String, a
// numeric type for Number and Integer (cast jsonb text extraction yourself,
// e.g. `((attributes->>'households')::numeric)`), boolean, timestamptz,
// date, or a PostGIS geometry in SRID 4326 (longitude, latitude) for Geometry.
type Property struct {
	SQL  string
	Type Type
}

// Resolver returns the Property for a queryable name, or false if the
// filter may not use that name.
type Resolver func(name string) (Property, bool)

// maxParams is PostgreSQL's limit on parameters in one statement.
const maxParams = 65535

// SQL translates e into a boolean SQL expression that can be joined to other
// conditions with AND or OR without extra parentheses. Values are appended
// to *args and referenced as $n with an explicit cast (n counts from the
// start of *args, so it may already hold the caller's parameters). Numbers
// bind as int64 or float64, strings as string, TRUE/FALSE as bool, TIMESTAMP
// and DATE as time.Time (UTC), geometries as WKT text written from the parsed
// coordinates. On error *args is left as it was.
func SQL(e Expr, resolve Resolver, args *[]any) (string, error) {
	if e == nil {
		return "", errors.New("cql2: SQL called with a nil expression")
	}
	n := len(*args)
	t := &translator{resolve: resolve, args: args}
	s, err := t.expr(e)
	if err != nil {
		*args = (*args)[:n]
		return "", err
	}
	return s, nil
}

type translator struct {
	resolve Resolver
	args    *[]any
}

// value is a translated operand.
type value struct {
	sql  string
	typ  Type
	desc string // how error messages name it
	pos  int
}

func (t *translator) bind(v any, cast string) (string, error) {
	if len(*t.args) >= maxParams {
		return "", fmt.Errorf("the filter holds too many values for one query (PostgreSQL allows %d)", maxParams)
	}
	*t.args = append(*t.args, v)
	return "$" + strconv.Itoa(len(*t.args)) + "::" + cast, nil
}

func (t *translator) expr(e Expr) (string, error) {
	switch e := e.(type) {
	case *andExpr:
		return t.join(e.args, " AND ")
	case *orExpr:
		return t.join(e.args, " OR ")
	case *notExpr:
		x, err := t.expr(e.x)
		if err != nil {
			return "", err
		}
		return "NOT (" + x + ")", nil
	case *boolExpr:
		return t.bind(e.lit.v, "boolean")
	case *compareExpr:
		return t.compare(e)
	case *likeExpr:
		return t.like(e)
	case *betweenExpr:
		return t.between(e)
	case *inExpr:
		return t.in(e)
	case *isNullExpr:
		x, err := t.value(e.x)
		if err != nil {
			return "", err
		}
		if e.not {
			return x.sql + " IS NOT NULL", nil
		}
		return x.sql + " IS NULL", nil
	case *intersectsExpr:
		return t.intersects(e)
	}
	return "", fmt.Errorf("cql2: unknown expression %T", e)
}

func (t *translator) join(args []Expr, sep string) (string, error) {
	parts := make([]string, len(args))
	for i, a := range args {
		s, err := t.expr(a)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	return "(" + strings.Join(parts, sep) + ")", nil
}

func (t *translator) value(o operand) (value, error) {
	v := value{pos: o.position(), desc: "the value " + abbreviate(o.String())}
	var err error
	switch o := o.(type) {
	case *propRef:
		p, ok := t.resolve(o.name)
		if !ok {
			return v, fmt.Errorf("the filter names property %q (at character %d), which is not one of the queryables", o.name, o.pos)
		}
		if p.SQL == "" || p.Type < String || p.Type > Geometry {
			return v, fmt.Errorf("cql2: the resolver gave property %q no SQL or an unknown type", o.name)
		}
		v.sql, v.typ, v.desc = p.SQL, p.Type, fmt.Sprintf("property %q (%s)", o.name, p.Type)
		return v, nil
	case *strLit:
		v.typ, v.desc = String, "the string "+abbreviate(o.String())
		v.sql, err = t.bind(o.v, "text")
	case *numLit:
		v.desc = "the number " + o.String()
		if o.isInt {
			v.typ = Integer
			v.sql, err = t.bind(o.i, "bigint")
		} else {
			v.typ = Number
			v.sql, err = t.bind(o.f, "double precision")
		}
	case *boolLit:
		v.typ = Boolean
		v.sql, err = t.bind(o.v, "boolean")
	case *timeLit:
		if o.date {
			v.typ = Date
			v.sql, err = t.bind(o.t, "date")
		} else {
			v.typ = Timestamp
			v.sql, err = t.bind(o.t, "timestamptz")
		}
	case *geomLit:
		v.typ, v.desc = Geometry, "the geometry "+abbreviate(o.String())
		v.sql, err = t.geometry(o.g)
	default:
		err = fmt.Errorf("cql2: unknown operand %T", o)
	}
	return v, err
}

// geometry returns SQL for a geometry literal in SRID 4326. A BBOX whose
// west edge lies east of its east edge crosses the antimeridian and becomes
// two envelopes.
func (t *translator) geometry(g *geometry) (string, error) {
	if g.kind != "BBOX" {
		p, err := t.bind(g.wkt(), "text")
		if err != nil {
			return "", err
		}
		return "ST_GeomFromText(" + p + ", 4326)", nil
	}
	w, s, e, n := g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]
	if w <= e {
		return t.envelope(w, s, e, n)
	}
	west, err := t.envelope(w, s, 180, n)
	if err != nil {
		return "", err
	}
	east, err := t.envelope(-180, s, e, n)
	if err != nil {
		return "", err
	}
	return "ST_Collect(" + west + ", " + east + ")", nil
}

func (t *translator) envelope(nums ...float64) (string, error) {
	parts := make([]string, len(nums))
	for i, f := range nums {
		p, err := t.bind(f, "double precision")
		if err != nil {
			return "", err
		}
		parts[i] = p
	}
	return "ST_MakeEnvelope(" + strings.Join(parts, ", ") + ", 4326)", nil
}

func isNumeric(t Type) bool { return t == Number || t == Integer }

func canCompare(a, b Type) bool { return a == b || isNumeric(a) && isNumeric(b) }

// mismatch explains why a and b cannot be compared.
func mismatch(a, b value) error {
	hint := ""
	switch {
	case isNumeric(a.typ) && b.typ == String || isNumeric(b.typ) && a.typ == String:
		hint = "; write numbers without quotes, and quote strings"
	case a.typ == Timestamp || b.typ == Timestamp:
		hint = "; write timestamps as TIMESTAMP('2024-01-02T03:04:05Z')"
	case a.typ == Date || b.typ == Date:
		hint = "; write dates as DATE('2024-01-02')"
	}
	return fmt.Errorf("%s cannot be compared with %s (at character %d)%s", a.desc, b.desc, a.pos, hint)
}

func notGeometry(vs ...value) error {
	for _, v := range vs {
		if v.typ == Geometry {
			return fmt.Errorf("%s is a geometry (at character %d); use it in S_INTERSECTS or IS NULL", v.desc, v.pos)
		}
	}
	return nil
}

func (t *translator) compare(e *compareExpr) (string, error) {
	l, err := t.value(e.l)
	if err != nil {
		return "", err
	}
	r, err := t.value(e.r)
	if err != nil {
		return "", err
	}
	if err := notGeometry(l, r); err != nil {
		return "", err
	}
	if !canCompare(l.typ, r.typ) {
		return "", mismatch(l, r)
	}
	if l.typ == Boolean && e.op != "=" && e.op != "<>" {
		return "", fmt.Errorf("%s is TRUE or FALSE, which compares only with = or <> (at character %d)", l.desc, l.pos)
	}
	return l.sql + " " + e.op + " " + r.sql, nil
}

func (t *translator) like(e *likeExpr) (string, error) {
	x, err := t.value(e.x)
	if err != nil {
		return "", err
	}
	pat, err := t.value(e.pattern)
	if err != nil {
		return "", err
	}
	for _, v := range []value{x, pat} {
		if v.typ != String {
			return "", fmt.Errorf("LIKE matches strings, but %s is not one (at character %d)", v.desc, v.pos)
		}
	}
	return x.sql + notWord(e.not) + " LIKE " + pat.sql, nil
}

func (t *translator) between(e *betweenExpr) (string, error) {
	var vs [3]value
	for i, o := range []operand{e.x, e.lo, e.hi} {
		v, err := t.value(o)
		if err != nil {
			return "", err
		}
		if !isNumeric(v.typ) {
			return "", fmt.Errorf("BETWEEN compares numbers, but %s is not one (at character %d)", v.desc, v.pos)
		}
		vs[i] = v
	}
	return "(" + vs[0].sql + notWord(e.not) + " BETWEEN " + vs[1].sql + " AND " + vs[2].sql + ")", nil
}

func (t *translator) in(e *inExpr) (string, error) {
	x, err := t.value(e.x)
	if err != nil {
		return "", err
	}
	if err := notGeometry(x); err != nil {
		return "", err
	}
	items := make([]string, len(e.list))
	for i, o := range e.list {
		v, err := t.value(o)
		if err != nil {
			return "", err
		}
		if err := notGeometry(v); err != nil {
			return "", err
		}
		if !canCompare(x.typ, v.typ) {
			return "", mismatch(x, v)
		}
		items[i] = v.sql
	}
	return x.sql + notWord(e.not) + " IN (" + strings.Join(items, ", ") + ")", nil
}

func (t *translator) intersects(e *intersectsExpr) (string, error) {
	a, err := t.value(e.a)
	if err != nil {
		return "", err
	}
	b, err := t.value(e.b)
	if err != nil {
		return "", err
	}
	for _, v := range []value{a, b} {
		if v.typ != Geometry {
			return "", fmt.Errorf("S_INTERSECTS takes geometries, but %s is not one (at character %d)", v.desc, v.pos)
		}
	}
	return "ST_Intersects(" + a.sql + ", " + b.sql + ")", nil
}

// abbreviate shortens literal text quoted in error messages.
func abbreviate(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
