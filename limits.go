package gridmap

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/paulmach/orb"
)

// Limits on the size and shape of what clients send. Each sits well above
// what real boundaries and real requests need and well below what it takes
// to tie up a server, so that a request past one is refused at once, with a
// message naming the limit, instead of being worked on. Geometry and
// changeset sizes past their limits are ETOOLARGE (413); nesting past
// MaxJSONDepth is EUNPROCESSABLE (422). The count of a batch lookup is
// MaxLookupPoints; body sizes are the server's to limit.
const (
	// MaxVertices is the most vertices one geometry may have, over all its
	// rings and parts. The largest real boundary in the NYC test data, the
	// borough of Queens, has 28,927.
	MaxVertices = 150_000
	// MaxRings is the most rings one geometry may have: shells and holes
	// over all its polygons, or the lines of a MultiLineString. The most in
	// the NYC test data is 261, the precinct with the harbour's islands.
	MaxRings = 10_000
	// MaxJSONDepth is how deeply a JSON request body may nest arrays and
	// objects. A GeoJSON FeatureCollection of MultiPolygons needs 8.
	MaxJSONDepth = 64
	// MaxChangesetOperations is the most operations one changeset may hold;
	// larger edits are imports.
	MaxChangesetOperations = 1_000
	// MaxCodesPerOperation is the most codes one changeset operation may
	// name: the grids a merge joins, the new codes of a split.
	MaxCodesPerOperation = 1_000
	// MaxCodeLength is the longest grid code, in bytes.
	MaxCodeLength = 100
)

// CheckGeometrySize returns nil for a geometry within MaxVertices and
// MaxRings, else ETOOLARGE saying which limit and by how much, as in
// "Polygon has 200,001 vertices; at most 150,000 are accepted per geometry".
// A nil geometry passes.
func CheckGeometrySize(g orb.Geometry) error {
	if g == nil {
		return nil
	}
	vertices, rings := geometrySize(g)
	switch {
	case vertices > MaxVertices:
		return Errorf(ETOOLARGE, "%s has %s vertices; at most %s are accepted per geometry: simplify it or split it into several grids",
			g.GeoJSONType(), thousands(vertices), thousands(MaxVertices))
	case rings > MaxRings:
		return Errorf(ETOOLARGE, "%s has %s rings; at most %s are accepted per geometry",
			g.GeoJSONType(), thousands(rings), thousands(MaxRings))
	}
	return nil
}

// geometrySize counts vertices and rings (or lines) without allocating.
func geometrySize(g orb.Geometry) (vertices, rings int) {
	switch g := g.(type) {
	case orb.Point:
		return 1, 0
	case orb.MultiPoint:
		return len(g), 0
	case orb.LineString:
		return len(g), 1
	case orb.Ring:
		return len(g), 1
	case orb.MultiLineString:
		for _, l := range g {
			vertices += len(l)
		}
		return vertices, len(g)
	case orb.Polygon:
		for _, r := range g {
			vertices += len(r)
		}
		return vertices, len(g)
	case orb.MultiPolygon:
		for _, p := range g {
			for _, r := range p {
				vertices += len(r)
			}
			rings += len(p)
		}
		return vertices, rings
	case orb.Collection:
		for _, m := range g {
			v, r := geometrySize(m)
			vertices, rings = vertices+v, rings+r
		}
		return vertices, rings
	case orb.Bound:
		return 4, 1
	}
	return 0, 0
}

// CheckCoordinates returns nil when every point of g is a finite longitude
// within ±180 and latitude within ±90 (WGS84 and the lon/lat systems
// gridmap converts from), else EINVALID naming the first point that is not.
func CheckCoordinates(g orb.Geometry) error {
	var bad error
	eachPoint(g, func(p orb.Point) bool {
		bad = CheckLonLat(p[0], p[1])
		return bad == nil
	})
	return bad
}

// eachPoint calls f with the points of g until f returns false.
func eachPoint(g orb.Geometry, f func(orb.Point) bool) bool {
	switch g := g.(type) {
	case orb.Point:
		return f(g)
	case orb.MultiPoint:
		return eachOf(g, f)
	case orb.LineString:
		return eachOf(g, f)
	case orb.Ring:
		return eachOf(g, f)
	case orb.MultiLineString:
		for _, l := range g {
			if !eachOf(l, f) {
				return false
			}
		}
	case orb.Polygon:
		for _, r := range g {
			if !eachOf(r, f) {
				return false
			}
		}
	case orb.MultiPolygon:
		for _, p := range g {
			for _, r := range p {
				if !eachOf(r, f) {
					return false
				}
			}
		}
	case orb.Collection:
		for _, m := range g {
			if !eachPoint(m, f) {
				return false
			}
		}
	case orb.Bound:
		return f(g.Min) && f(g.Max)
	}
	return true
}

func eachOf[P ~[]orb.Point](ps P, f func(orb.Point) bool) bool {
	for _, p := range ps {
		if !f(p) {
			return false
		}
	}
	return true
}

// CheckText returns nil for text PostgreSQL can store, else EINVALID naming
// what it is (a parameter, a field): text must be UTF-8 without NUL.
func CheckText(what, s string) error {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return Errorf(EINVALID, "%s holds a NUL character (at byte %d); text cannot hold one", what, i)
	}
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s is not valid UTF-8 text", what)
	}
	return nil
}

// CheckCode returns nil for a grid code that is text of at most
// MaxCodeLength bytes, else EINVALID saying what is wrong (what names the
// code's place, such as "new_codes[1]"). Whether a code may be empty is the
// caller's to say.
func CheckCode(what, code string) error {
	if err := CheckText(what, code); err != nil {
		return err
	}
	if len(code) > MaxCodeLength {
		return Errorf(EINVALID, "%s is %s bytes long; grid codes are at most %d", what, thousands(len(code)), MaxCodeLength)
	}
	return nil
}

// LimitJSON returns a reader of r for a JSON decoder that fails as soon as
// the JSON nests arrays and objects deeper than MaxJSONDepth
// (EUNPROCESSABLE) or a string holds an escaped NUL, \u0000, which no text
// or jsonb column can store (EINVALID), before the value is built. It reads
// a stream of several JSON values as well as one. It does not check the
// rest of the syntax: the decoder does.
func LimitJSON(r io.Reader) io.Reader { return &jsonLimiter{r: r} }

type jsonLimiter struct {
	r     io.Reader
	depth int
	// inString is true inside a string; escape counts the bytes of an
	// escape sequence read so far (1 after the backslash, 2 after "\u",
	// up to 5 after its four hex digits), zeros whether those digits were
	// all '0' so far.
	inString bool
	escape   int
	zeros    bool
	offset   int64
	err      error
}

func (l *jsonLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	if i := l.scan(p[:n]); i < n {
		return i, l.err
	}
	return n, err
}

// structural marks the bytes that matter outside strings.
var structural = [256]bool{'"': true, '[': true, '{': true, ']': true, '}': true}

// scan follows p through strings, escapes and brackets. It returns len(p),
// or the index of the byte that broke a limit, with l.err saying which.
func (l *jsonLimiter) scan(p []byte) int {
	depth, inString, escape, zeros := l.depth, l.inString, l.escape, l.zeros
	i := 0
	for ; i < len(p) && l.err == nil; i++ {
		c := p[i]
		switch {
		case escape == 1:
			escape, zeros = 0, true
			if c == 'u' {
				escape = 2
			}
		case escape > 1:
			zeros = zeros && c == '0'
			if escape++; escape == 6 {
				escape = 0
				if zeros {
					l.err = Errorf(EINVALID, `JSON text holds an escaped NUL character (\u0000, near byte %d); text cannot hold one`, l.offset+int64(i))
				}
			}
		case inString: // skip to the quote or backslash that matters
			for i < len(p)-1 && c != '"' && c != '\\' {
				i++
				c = p[i]
			}
			switch c {
			case '"':
				inString = false
			case '\\':
				escape = 1
			}
		case !structural[c]: // numbers, literals, commas, colons, space
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxJSONDepth {
				l.err = Errorf(EUNPROCESSABLE, "JSON nests arrays and objects more than %d deep (at byte %d); at most %d levels are accepted",
					MaxJSONDepth, l.offset+int64(i), MaxJSONDepth)
			}
		default: // ']' or '}'
			depth = max(depth-1, 0)
		}
	}
	if l.err != nil {
		i-- // the byte that broke the limit is not passed on
	}
	l.depth, l.inString, l.escape, l.zeros = depth, inString, escape, zeros
	l.offset += int64(i)
	return i
}

// thousands writes a count with a comma between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
