// Package cql2 parses OGC CQL2 text filters (OGC 21-065r2, the encoding used
// by OGC API - Features Part 3 with filter-lang=cql2-text) and translates them
// into PostgreSQL/PostGIS boolean expressions whose values are all bound
// parameters.
//
// The supported language is the comparison, logical and null predicates of
// Basic CQL2, LIKE, BETWEEN and IN, S_INTERSECTS with WKT and BBOX literals in
// CRS84 (longitude, latitude), and comparisons between two properties.
// Everything else is refused with an error that names it.
package cql2

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the longest filter text, in bytes, that Parse accepts.
const MaxLength = 64 << 10

// MaxDepth is how deeply Parse lets parentheses, NOT and geometry
// collections nest.
const MaxDepth = 100

// Conformance lists the CQL2 conformance classes this package implements,
// for the /conformance document of a service that uses it.
var Conformance = []string{
	"http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
	"http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
	"http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
	"http://www.opengis.net/spec/cql2/1.0/conf/property-property",
}

// supported is quoted in errors about operators and functions that are not.
const supported = "supported: =, <>, <, <=, >, >=, AND, OR, NOT, IS [NOT] NULL, [NOT] LIKE, [NOT] BETWEEN, [NOT] IN, S_INTERSECTS"

// Expr is a parsed CQL2 boolean expression. Its String method renders it as
// canonical CQL2 text, which Parse reads back into an equal expression.
type Expr interface {
	String() string
	isExpr()
}

// operand is a scalar or geometry value: a property reference or a literal.
type operand interface {
	String() string
	position() int
}

type (
	andExpr struct{ args []Expr }
	orExpr  struct{ args []Expr }
	notExpr struct{ x Expr }

	// boolExpr is TRUE or FALSE standing alone as a condition.
	boolExpr struct{ lit *boolLit }

	compareExpr struct {
		op   string
		l, r operand
	}
	likeExpr struct {
		not        bool
		x, pattern operand
	}
	betweenExpr struct {
		not       bool
		x, lo, hi operand
	}
	inExpr struct {
		not  bool
		x    operand
		list []operand
	}
	isNullExpr struct {
		not bool
		x   operand
	}
	intersectsExpr struct {
		pos  int
		a, b operand
	}
)

func (*andExpr) isExpr()        {}
func (*orExpr) isExpr()         {}
func (*notExpr) isExpr()        {}
func (*boolExpr) isExpr()       {}
func (*compareExpr) isExpr()    {}
func (*likeExpr) isExpr()       {}
func (*betweenExpr) isExpr()    {}
func (*inExpr) isExpr()         {}
func (*isNullExpr) isExpr()     {}
func (*intersectsExpr) isExpr() {}

type (
	propRef struct {
		pos  int
		name string
	}
	strLit struct {
		pos int
		v   string
	}
	numLit struct {
		pos   int
		f     float64
		i     int64
		isInt bool
	}
	boolLit struct {
		pos int
		v   bool
	}
	// timeLit is a TIMESTAMP or, when date is set, a DATE literal.
	timeLit struct {
		pos  int
		t    time.Time
		date bool
	}
	geomLit struct {
		pos int
		g   *geometry
	}
)

func (o *propRef) position() int { return o.pos }
func (o *strLit) position() int  { return o.pos }
func (o *numLit) position() int  { return o.pos }
func (o *boolLit) position() int { return o.pos }
func (o *timeLit) position() int { return o.pos }
func (o *geomLit) position() int { return o.pos }

// geometry is a parsed geometry literal. Which fields are set depends on
// kind: coords for POINT (one coordinate), LINESTRING and MULTIPOINT; lines
// for POLYGON (rings) and MULTILINESTRING; polys for MULTIPOLYGON; members
// for GEOMETRYCOLLECTION; bbox (west, south, east, north) for BBOX.
type geometry struct {
	kind    string
	coords  [][]float64
	lines   [][][]float64
	polys   [][][][]float64
	members []*geometry
	bbox    [4]float64
	// elev holds the minimum and maximum elevation of a six-number BBOX.
	elev []float64
}

// Parse reads a CQL2 text filter. Errors are meant for the user who wrote
// the filter; syntax errors give the character position (1 is the first).
func Parse(text string) (Expr, error) {
	if len(text) > MaxLength {
		return nil, fmt.Errorf("the filter is %d bytes long; the limit is %d", len(text), MaxLength)
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("the filter is not valid UTF-8 text")
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{text: text, toks: toks}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s after a complete condition; join conditions with AND or OR", t.describe())
	}
	return e, nil
}

// ---- lexer ----

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tQuotedIdent
	tString
	tNumber
	tPunct
)

type token struct {
	kind tokKind
	text string // identifier name, string value, number text or punctuation
	pos  int    // character position in the filter text, 1 for the first
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return "string " + quoteString(t.text)
	case tQuotedIdent:
		return "property " + strconv.Quote(t.text)
	default:
		return strconv.Quote(t.text)
	}
}

func (t token) is(kind tokKind, text string) bool {
	if t.kind != kind {
		return false
	}
	if kind == tIdent {
		return strings.EqualFold(t.text, text)
	}
	return t.text == text
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool {
	return isIdentStart(r) || unicode.IsDigit(r) || r == '.' || r == ':'
}

func lex(text string) ([]token, error) {
	var toks []token
	i, char := 0, 1
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		start := i
		n := len(toks)
		switch {
		case unicode.IsSpace(r):
			i += size
		case isIdentStart(r):
			for i < len(text) {
				r, size := utf8.DecodeRuneInString(text[i:])
				if !isIdentPart(r) {
					break
				}
				i += size
			}
			toks = append(toks, token{tIdent, text[start:i], start})
		case r == '\'' || r == '"':
			s, end, err := lexQuoted(text, i, byte(r))
			if err != nil {
				return nil, err
			}
			kind := tString
			if r == '"' {
				kind = tQuotedIdent
				if s == "" {
					return nil, fmt.Errorf("empty property name \"\" at character %d", charPos(text, start))
				}
			}
			toks = append(toks, token{kind, s, start})
			i = end
		case r >= '0' && r <= '9' || r == '.' && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			i = lexNumber(text, i)
			toks = append(toks, token{tNumber, text[start:i], start})
		default:
			punct := ""
			for _, p := range []string{"<>", "<=", ">=", "!=", "(", ")", ",", "=", "<", ">", "+", "-", "*", "/", "^", "%"} {
				if strings.HasPrefix(text[i:], p) {
					punct = p
					break
				}
			}
			if punct == "" {
				return nil, fmt.Errorf("unexpected character %q at character %d", r, charPos(text, start))
			}
			if punct == "!=" {
				return nil, fmt.Errorf("CQL2 has no != operator (at character %d); use <> for \"not equal\"", charPos(text, start))
			}
			toks = append(toks, token{tPunct, punct, start})
			i += len(punct)
		}
		if len(toks) > n {
			toks[n].pos = char
		}
		char += utf8.RuneCountInString(text[start:i])
	}
	return append(toks, token{kind: tEOF, pos: char}), nil
}

// lexQuoted reads a literal quoted by q starting at text[i], where a doubled
// q stands for one, and returns its value and the offset after it.
func lexQuoted(text string, i int, q byte) (string, int, error) {
	var b strings.Builder
	for j := i + 1; j < len(text); j++ {
		if text[j] != q {
			b.WriteByte(text[j])
			continue
		}
		if j+1 < len(text) && text[j+1] == q {
			b.WriteByte(q)
			j++
			continue
		}
		return b.String(), j + 1, nil
	}
	what := "string"
	if q == '"' {
		what = "quoted property name"
	}
	return "", 0, fmt.Errorf("the %s starting at character %d has no closing %c", what, charPos(text, i), q)
}

// lexNumber returns the offset after the unsigned number at text[i]:
// digits, an optional fraction and an optional exponent.
func lexNumber(text string, i int) int {
	digits := func() {
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			i++
		}
	}
	digits()
	if i < len(text) && text[i] == '.' {
		i++
		digits()
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		j := i + 1
		if j < len(text) && (text[j] == '+' || text[j] == '-') {
			j++
		}
		if j < len(text) && text[j] >= '0' && text[j] <= '9' {
			i = j
			digits()
		}
	}
	return i
}

// charPos turns a byte offset into a 1-based character position.
func charPos(text string, offset int) int {
	return utf8.RuneCountInString(text[:offset]) + 1
}

// ---- parser ----

type parser struct {
	text  string
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return fmt.Errorf("%s at character %d", fmt.Sprintf(format, args...), t.pos)
}

func (p *parser) expect(kind tokKind, text string) (token, error) {
	t := p.next()
	if !t.is(kind, text) {
		return t, p.errorf(t, "expected %q, found %s", text, t.describe())
	}
	return t, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errorf(t, "the filter nests more than %d levels deep", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) parseOr() (Expr, error) {
	x, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	args := []Expr{x}
	for p.peek().is(tIdent, "OR") {
		p.next()
		y, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		args = append(args, y)
	}
	if len(args) == 1 {
		return x, nil
	}
	return &orExpr{args}, nil
}

func (p *parser) parseAnd() (Expr, error) {
	x, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	args := []Expr{x}
	for p.peek().is(tIdent, "AND") {
		p.next()
		y, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		args = append(args, y)
	}
	if len(args) == 1 {
		return x, nil
	}
	return &andExpr{args}, nil
}

func (p *parser) parseNot() (Expr, error) {
	t := p.peek()
	if !t.is(tIdent, "NOT") {
		return p.parsePrimary()
	}
	p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	x, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	return &notExpr{x}, nil
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.peek()
	if t.is(tPunct, "(") {
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); !c.is(tPunct, ")") {
			return nil, p.errorf(c, "expected \")\" to close the \"(\" at character %d, found %s", t.pos, c.describe())
		}
		return x, nil
	}
	if t.is(tIdent, "S_INTERSECTS") && p.peekAt(1).is(tPunct, "(") {
		p.next()
		p.next()
		a, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ","); err != nil {
			return nil, err
		}
		b, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tPunct, ")"); err != nil {
			return nil, err
		}
		return &intersectsExpr{pos: t.pos, a: a, b: b}, nil
	}
	return p.parsePredicate()
}

var compareOps = map[string]bool{"=": true, "<>": true, "<": true, "<=": true, ">": true, ">=": true}

func (p *parser) parsePredicate() (Expr, error) {
	x, err := p.parseOperand()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	if t.kind == tPunct && compareOps[t.text] {
		p.next()
		y, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		return &compareExpr{op: t.text, l: x, r: y}, nil
	}
	not := false
	if t.is(tIdent, "NOT") {
		p.next()
		not = true
		t = p.peek()
		if !t.is(tIdent, "LIKE") && !t.is(tIdent, "BETWEEN") && !t.is(tIdent, "IN") {
			return nil, p.errorf(t, "expected LIKE, BETWEEN or IN after NOT, found %s", t.describe())
		}
	}
	switch {
	case t.is(tIdent, "LIKE"):
		p.next()
		pat, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		return &likeExpr{not: not, x: x, pattern: pat}, nil
	case t.is(tIdent, "BETWEEN"):
		p.next()
		lo, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(tIdent, "AND"); err != nil {
			return nil, err
		}
		hi, err := p.parseOperand()
		if err != nil {
			return nil, err
		}
		return &betweenExpr{not: not, x: x, lo: lo, hi: hi}, nil
	case t.is(tIdent, "IN"):
		p.next()
		if _, err := p.expect(tPunct, "("); err != nil {
			return nil, err
		}
		var list []operand
		for {
			item, err := p.parseOperand()
			if err != nil {
				return nil, err
			}
			list = append(list, item)
			c := p.next()
			if c.is(tPunct, ")") {
				break
			}
			if !c.is(tPunct, ",") {
				return nil, p.errorf(c, "expected \",\" or \")\" in the IN list, found %s", c.describe())
			}
		}
		return &inExpr{not: not, x: x, list: list}, nil
	case t.is(tIdent, "IS"):
		p.next()
		not := false
		if p.peek().is(tIdent, "NOT") {
			p.next()
			not = true
		}
		if _, err := p.expect(tIdent, "NULL"); err != nil {
			return nil, err
		}
		return &isNullExpr{not: not, x: x}, nil
	}
	if b, ok := x.(*boolLit); ok {
		return &boolExpr{b}, nil
	}
	if _, ok := x.(*propRef); ok && (t.kind == tEOF || t.is(tIdent, "AND") || t.is(tIdent, "OR") || t.is(tPunct, ")")) {
		return nil, p.errorf(t, "property %s alone is not a condition; compare it, e.g. %s = TRUE", x.String(), x.String())
	}
	return nil, p.errorf(t, "expected a comparison operator, LIKE, BETWEEN, IN or IS after %s, found %s", x.String(), t.describe())
}

// keywords cannot be unquoted property names.
var keywords = map[string]bool{
	"AND": true, "OR": true, "NOT": true, "LIKE": true, "BETWEEN": true, "IN": true,
	"IS": true, "NULL": true, "TRUE": true, "FALSE": true, "DIV": true,
}

// unsupportedFunctions are CQL2 functions outside the supported classes.
var unsupportedFunctions = map[string]string{}

func init() {
	for _, f := range []string{
		"S_CONTAINS", "S_CROSSES", "S_DISJOINT", "S_EQUALS", "S_OVERLAPS", "S_TOUCHES", "S_WITHIN",
		"T_AFTER", "T_BEFORE", "T_CONTAINS", "T_DISJOINT", "T_DURING", "T_EQUALS", "T_FINISHEDBY",
		"T_FINISHES", "T_INTERSECTS", "T_MEETS", "T_METBY", "T_OVERLAPPEDBY", "T_OVERLAPS",
		"T_STARTEDBY", "T_STARTS", "INTERVAL",
		"A_CONTAINEDBY", "A_CONTAINS", "A_EQUALS", "A_OVERLAPS",
		"CASEI", "ACCENTI",
	} {
		unsupportedFunctions[f] = f
	}
	unsupportedFunctions["ENVELOPE"] = "ENVELOPE (not part of CQL2 1.0; write BBOX(west, south, east, north))"
}

var geometryKinds = map[string]bool{
	"POINT": true, "LINESTRING": true, "POLYGON": true, "MULTIPOINT": true,
	"MULTILINESTRING": true, "MULTIPOLYGON": true, "GEOMETRYCOLLECTION": true, "BBOX": true,
}

// parseOperand reads a property or literal and refuses arithmetic after it.
func (p *parser) parseOperand() (operand, error) {
	o, err := p.parseValue()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tPunct && strings.Contains("+-*/^%", t.text) || t.is(tIdent, "DIV") {
		return nil, p.errorf(t, "the filter uses arithmetic (%s), which this service does not support; %s", t.text, supported)
	}
	return o, nil
}

func (p *parser) parseValue() (operand, error) {
	t := p.next()
	pos := t.pos
	switch t.kind {
	case tString:
		return &strLit{pos, t.text}, nil
	case tNumber:
		return p.number(t, false)
	case tQuotedIdent:
		return &propRef{pos, t.text}, nil
	case tPunct:
		if (t.text == "-" || t.text == "+") && p.peek().kind == tNumber {
			return p.number(p.next(), t.text == "-")
		}
		return nil, p.errorf(t, "expected a property or a value, found %s", t.describe())
	case tEOF:
		return nil, p.errorf(t, "the filter ends where a property or a value was expected")
	}
	upper := strings.ToUpper(t.text)
	callsFunction := p.peek().is(tPunct, "(")
	if geometryKinds[upper] && (callsFunction || p.peek().is(tIdent, "Z") && p.peekAt(1).is(tPunct, "(")) {
		p.i--
		g, err := p.parseGeometry()
		if err != nil {
			return nil, err
		}
		return &geomLit{pos, g}, nil
	}
	if callsFunction {
		switch upper {
		case "TIMESTAMP", "DATE":
			return p.parseTime(t, upper == "DATE")
		}
		if name, ok := unsupportedFunctions[upper]; ok {
			return nil, p.errorf(t, "the filter uses %s, which this service does not support; %s", name, supported)
		}
		if upper == "S_INTERSECTS" {
			return nil, p.errorf(t, "S_INTERSECTS is a condition, not a value; use it on its own, combined with AND, OR or NOT")
		}
		return nil, p.errorf(t, "the filter calls function %s, which this service does not support; %s", t.text, supported)
	}
	switch upper {
	case "TRUE", "FALSE":
		return &boolLit{pos, upper == "TRUE"}, nil
	}
	if upper == "NULL" {
		return nil, p.errorf(t, "NULL is not a value to compare with; write \"property IS NULL\" or \"property IS NOT NULL\"")
	}
	if keywords[upper] {
		return nil, p.errorf(t, "expected a property or a value, found the keyword %s (quote a property of that name: \"%s\")", upper, t.text)
	}
	return &propRef{pos, t.text}, nil
}

func (p *parser) number(t token, negative bool) (*numLit, error) {
	text := t.text
	if negative {
		text = "-" + text
	}
	lit := &numLit{pos: t.pos}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		lit.i, lit.f, lit.isInt = i, float64(i), true
		return lit, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, p.errorf(t, "the number %s is not a finite number", text)
	}
	if f == 0 {
		f = 0 // drops the sign of -0
	}
	lit.f = f
	return lit, nil
}

func (p *parser) parseTime(t token, date bool) (operand, error) {
	if _, err := p.expect(tPunct, "("); err != nil {
		return nil, err
	}
	s := p.next()
	if s.kind != tString {
		return nil, p.errorf(s, "expected a quoted string in %s(...), found %s", strings.ToUpper(t.text), s.describe())
	}
	if _, err := p.expect(tPunct, ")"); err != nil {
		return nil, err
	}
	lit := &timeLit{pos: t.pos, date: date}
	var err error
	if date {
		lit.t, err = time.Parse(time.DateOnly, s.text)
		if err != nil {
			return nil, p.errorf(s, "DATE(%s) is not a date of the form 'YYYY-MM-DD'", quoteString(s.text))
		}
	} else {
		lit.t, err = time.Parse(time.RFC3339Nano, s.text)
		if err != nil {
			return nil, p.errorf(s, "TIMESTAMP(%s) is not a timestamp of the form 'YYYY-MM-DDTHH:MM:SSZ'", quoteString(s.text))
		}
		lit.t = lit.t.UTC()
	}
	return lit, nil
}

// ---- geometry literals ----

func (p *parser) parseGeometry() (*geometry, error) {
	t := p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	defer p.leave()
	kind := strings.ToUpper(t.text)
	if kind != "BBOX" && p.peek().is(tIdent, "Z") {
		p.next()
	}
	if _, err := p.expect(tPunct, "("); err != nil {
		return nil, err
	}
	g := &geometry{kind: kind}
	var err error
	switch kind {
	case "POINT":
		var c []float64
		if c, err = p.parseCoord(); err == nil {
			_, err = p.expect(tPunct, ")")
		}
		g.coords = [][]float64{c}
	case "LINESTRING":
		g.coords, err = p.parseCoordList(2, false)
	case "MULTIPOINT":
		g.coords, err = p.parseMultiPoint()
	case "POLYGON":
		g.lines, err = p.parseRings()
	case "MULTILINESTRING":
		err = p.parseList(func() error {
			if _, err := p.expect(tPunct, "("); err != nil {
				return err
			}
			line, err := p.parseCoordList(2, false)
			g.lines = append(g.lines, line)
			return err
		})
	case "MULTIPOLYGON":
		err = p.parseList(func() error {
			if _, err := p.expect(tPunct, "("); err != nil {
				return err
			}
			rings, err := p.parseRings()
			g.polys = append(g.polys, rings)
			return err
		})
	case "GEOMETRYCOLLECTION":
		err = p.parseList(func() error {
			m := p.peek()
			if m.kind != tIdent || !geometryKinds[strings.ToUpper(m.text)] || strings.EqualFold(m.text, "BBOX") {
				return p.errorf(m, "expected a geometry in GEOMETRYCOLLECTION, found %s", m.describe())
			}
			member, err := p.parseGeometry()
			g.members = append(g.members, member)
			return err
		})
	case "BBOX":
		err = p.parseBBox(t, g)
	}
	if err != nil {
		return nil, err
	}
	if err := checkDimensions(g, t, p); err != nil {
		return nil, err
	}
	return g, nil
}

// parseList parses items separated by commas up to and including ")".
func (p *parser) parseList(item func() error) error {
	for {
		if err := item(); err != nil {
			return err
		}
		c := p.next()
		if c.is(tPunct, ")") {
			return nil
		}
		if !c.is(tPunct, ",") {
			return p.errorf(c, "expected \",\" or \")\", found %s", c.describe())
		}
	}
}

func (p *parser) parseSigned() (float64, token, error) {
	t := p.next()
	neg := false
	if t.is(tPunct, "-") || t.is(tPunct, "+") {
		neg = t.text == "-"
		t = p.next()
	}
	if t.kind != tNumber {
		return 0, t, p.errorf(t, "expected a number, found %s", t.describe())
	}
	n, err := p.number(t, neg)
	if err != nil {
		return 0, t, err
	}
	return n.f, t, nil
}

// parseCoord reads "lon lat [elevation]" and checks the ranges of CRS84.
func (p *parser) parseCoord() ([]float64, error) {
	start := p.peek()
	var c []float64
	for len(c) < 3 {
		nt := p.peek()
		if len(c) >= 2 && !(nt.kind == tNumber || nt.is(tPunct, "-") || nt.is(tPunct, "+")) {
			break
		}
		f, _, err := p.parseSigned()
		if err != nil {
			return nil, err
		}
		c = append(c, f)
	}
	if c[0] < -180 || c[0] > 180 || c[1] < -90 || c[1] > 90 {
		return nil, p.errorf(start, "the coordinate (%s %s) is outside longitude -180..180, latitude -90..90", formatNumber(c[0]), formatNumber(c[1]))
	}
	return c, nil
}

// parseCoordList reads coordinates up to and including ")"; a ring must be
// closed and have four of them.
func (p *parser) parseCoordList(min int, ring bool) ([][]float64, error) {
	start := p.peek()
	var cs [][]float64
	err := p.parseList(func() error {
		c, err := p.parseCoord()
		cs = append(cs, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(cs) < min {
		return nil, p.errorf(start, "expected at least %d coordinates, found %d", min, len(cs))
	}
	if ring && !equalCoords(cs[0], cs[len(cs)-1]) {
		return nil, p.errorf(start, "the polygon ring is not closed: its last coordinate must equal its first")
	}
	return cs, nil
}

func (p *parser) parseRings() ([][][]float64, error) {
	var rings [][][]float64
	err := p.parseList(func() error {
		if _, err := p.expect(tPunct, "("); err != nil {
			return err
		}
		ring, err := p.parseCoordList(4, true)
		rings = append(rings, ring)
		return err
	})
	return rings, err
}

// parseMultiPoint accepts both MULTIPOINT(1 2, 3 4) and MULTIPOINT((1 2), (3 4)).
func (p *parser) parseMultiPoint() ([][]float64, error) {
	var cs [][]float64
	err := p.parseList(func() error {
		paren := p.peek().is(tPunct, "(")
		if paren {
			p.next()
		}
		c, err := p.parseCoord()
		if err != nil {
			return err
		}
		cs = append(cs, c)
		if paren {
			_, err = p.expect(tPunct, ")")
		}
		return err
	})
	return cs, err
}

// parseBBox reads BBOX(west, south, east, north) or, with elevations,
// BBOX(west, south, minElev, east, north, maxElev).
func (p *parser) parseBBox(t token, g *geometry) error {
	var nums []float64
	err := p.parseList(func() error {
		f, _, err := p.parseSigned()
		nums = append(nums, f)
		return err
	})
	if err != nil {
		return err
	}
	switch len(nums) {
	case 4:
		g.bbox = [4]float64{nums[0], nums[1], nums[2], nums[3]}
	case 6:
		g.bbox = [4]float64{nums[0], nums[1], nums[3], nums[4]}
		g.elev = []float64{nums[2], nums[5]}
	default:
		return p.errorf(t, "BBOX takes 4 numbers (west, south, east, north) or 6 (with elevations), found %d", len(nums))
	}
	w, s, e, n := g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]
	if w < -180 || w > 180 || e < -180 || e > 180 || s < -90 || s > 90 || n < -90 || n > 90 {
		return p.errorf(t, "the BBOX is outside longitude -180..180, latitude -90..90")
	}
	if s > n {
		return p.errorf(t, "the BBOX has its south edge %s north of its north edge %s", formatNumber(s), formatNumber(n))
	}
	return nil
}

func equalCoords(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkDimensions refuses a geometry that mixes 2D and 3D coordinates,
// which PostGIS would reject.
func checkDimensions(g *geometry, t token, p *parser) error {
	if g.dims() < 0 {
		return p.errorf(t, "the %s mixes coordinates with and without elevation", g.kind)
	}
	return nil
}

// dims is 2 or 3 for a geometry whose coordinates all have that many
// numbers, 0 for a BBOX, and -1 for a mix.
func (g *geometry) dims() int {
	d := 0
	add := func(n int) {
		if d == 0 {
			d = n
		} else if d != n {
			d = -1
		}
	}
	g.eachCoord(func(c []float64) { add(len(c)) })
	for _, m := range g.members {
		if md := m.dims(); md != 0 {
			add(md)
		}
	}
	return d
}

func (g *geometry) eachCoord(f func([]float64)) {
	for _, c := range g.coords {
		f(c)
	}
	for _, l := range g.lines {
		for _, c := range l {
			f(c)
		}
	}
	for _, poly := range g.polys {
		for _, l := range poly {
			for _, c := range l {
				f(c)
			}
		}
	}
}

// wkt renders g (other than a BBOX) as WKT from its parsed numbers.
func (g *geometry) wkt() string {
	var b strings.Builder
	g.writeWKT(&b)
	return b.String()
}

func (g *geometry) writeWKT(b *strings.Builder) {
	b.WriteString(g.kind)
	if g.dims() == 3 {
		b.WriteString(" Z")
	}
	coord := func(c []float64) {
		for i, x := range c {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(formatNumber(x))
		}
	}
	list := func(cs [][]float64) {
		b.WriteByte('(')
		for i, c := range cs {
			if i > 0 {
				b.WriteByte(',')
			}
			coord(c)
		}
		b.WriteByte(')')
	}
	lists := func(ls [][][]float64) {
		b.WriteByte('(')
		for i, l := range ls {
			if i > 0 {
				b.WriteByte(',')
			}
			list(l)
		}
		b.WriteByte(')')
	}
	switch g.kind {
	case "POINT", "LINESTRING":
		list(g.coords)
	case "MULTIPOINT":
		b.WriteByte('(')
		for i, c := range g.coords {
			if i > 0 {
				b.WriteByte(',')
			}
			list([][]float64{c})
		}
		b.WriteByte(')')
	case "POLYGON", "MULTILINESTRING":
		lists(g.lines)
	case "MULTIPOLYGON":
		b.WriteByte('(')
		for i, poly := range g.polys {
			if i > 0 {
				b.WriteByte(',')
			}
			lists(poly)
		}
		b.WriteByte(')')
	case "GEOMETRYCOLLECTION":
		b.WriteByte('(')
		for i, m := range g.members {
			if i > 0 {
				b.WriteByte(',')
			}
			m.writeWKT(b)
		}
		b.WriteByte(')')
	}
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// ---- canonical text ----

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func joinExprs(args []Expr, sep string) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.String()
	}
	return "(" + strings.Join(parts, sep) + ")"
}

func notWord(not bool) string {
	if not {
		return " NOT"
	}
	return ""
}

func (e *andExpr) String() string     { return joinExprs(e.args, " AND ") }
func (e *orExpr) String() string      { return joinExprs(e.args, " OR ") }
func (e *notExpr) String() string     { return "NOT " + e.x.String() }
func (e *boolExpr) String() string    { return e.lit.String() }
func (e *compareExpr) String() string { return e.l.String() + " " + e.op + " " + e.r.String() }
func (e *likeExpr) String() string {
	return e.x.String() + notWord(e.not) + " LIKE " + e.pattern.String()
}
func (e *betweenExpr) String() string {
	return e.x.String() + notWord(e.not) + " BETWEEN " + e.lo.String() + " AND " + e.hi.String()
}
func (e *inExpr) String() string {
	parts := make([]string, len(e.list))
	for i, o := range e.list {
		parts[i] = o.String()
	}
	return e.x.String() + notWord(e.not) + " IN (" + strings.Join(parts, ", ") + ")"
}
func (e *isNullExpr) String() string {
	if e.not {
		return e.x.String() + " IS NOT NULL"
	}
	return e.x.String() + " IS NULL"
}
func (e *intersectsExpr) String() string {
	return "S_INTERSECTS(" + e.a.String() + ", " + e.b.String() + ")"
}

func (o *propRef) String() string {
	plain := o.name != "" && !keywords[strings.ToUpper(o.name)]
	for i, r := range o.name {
		if i == 0 && !isIdentStart(r) || !isIdentPart(r) {
			plain = false
		}
	}
	if plain {
		return o.name
	}
	return `"` + strings.ReplaceAll(o.name, `"`, `""`) + `"`
}
func (o *strLit) String() string { return quoteString(o.v) }
func (o *numLit) String() string {
	if o.isInt {
		return strconv.FormatInt(o.i, 10)
	}
	return strconv.FormatFloat(o.f, 'g', -1, 64)
}
func (o *boolLit) String() string {
	if o.v {
		return "TRUE"
	}
	return "FALSE"
}
func (o *timeLit) String() string {
	if o.date {
		return "DATE('" + o.t.Format(time.DateOnly) + "')"
	}
	return "TIMESTAMP('" + o.t.Format(time.RFC3339Nano) + "')"
}
func (o *geomLit) String() string {
	g := o.g
	if g.kind != "BBOX" {
		return g.wkt()
	}
	nums := []float64{g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]}
	if g.elev != nil {
		nums = []float64{g.bbox[0], g.bbox[1], g.elev[0], g.bbox[2], g.bbox[3], g.elev[1]}
	}
	parts := make([]string, len(nums))
	for i, f := range nums {
		parts[i] = formatNumber(f)
	}
	return "BBOX(" + strings.Join(parts, ", ") + ")"
}
