package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gridmap/gridmap"
)

// batchRequest is the body of POST /v1/lookup.
type batchRequest struct {
	points    [][2]float64
	crs       string
	layer     string
	tolerance *float64
	accuracy  float64
	at        *time.Time
}

// parseBatch reads a batch lookup body: {"points": [[lon, lat], ...],
// "crs", "layer", "tolerance_m", "accuracy_m", "at"}. The points array is
// read by hand (encoding/json spends most of a batch's time there); the
// rest is ordinary JSON. Returns EINVALID saying where the body is wrong,
// ETOOLARGE past gridmap.MaxLookupPoints points.
func parseBatch(body []byte) (*batchRequest, error) { return parseBatchOn(body, 1) }

// parseBatchOn is parseBatch reading a large points array on up to
// workers goroutines, with the same result and the same errors.
func parseBatchOn(body []byte, workers int) (*batchRequest, error) {
	p := &jsonScanner{b: body}
	req := &batchRequest{}
	seenPoints := false
	if !p.consume('{') {
		return nil, p.fail("the body must be a JSON object like {\"points\": [[lon, lat], ...]}")
	}
	if !p.consume('}') {
		for {
			key, err := p.str()
			if err != nil {
				return nil, err
			}
			if !p.consume(':') {
				return nil, p.fail(fmt.Sprintf("expected ':' after %q", key))
			}
			switch key {
			case "points":
				if req.points, err = p.pointsOn(workers); err != nil {
					return nil, err
				}
				seenPoints = true
			case "crs":
				req.crs, err = p.optionalString(key)
			case "layer":
				req.layer, err = p.optionalString(key)
			case "at":
				var at string
				if at, err = p.optionalString(key); err == nil && at != "" {
					t, perr := parseTime("at", at)
					if perr != nil {
						return nil, perr
					}
					req.at = &t
				}
			case "tolerance_m":
				var v *float64
				if v, err = p.optionalNumber(key); err == nil {
					req.tolerance = v
				}
			case "accuracy_m":
				var v *float64
				if v, err = p.optionalNumber(key); err == nil && v != nil {
					req.accuracy = *v
				}
			default:
				return nil, gridmap.Errorf(gridmap.EINVALID, "unknown field %q; a batch lookup takes points, crs, layer, tolerance_m, accuracy_m and at", key)
			}
			if err != nil {
				return nil, err
			}
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return nil, p.fail("expected ',' or '}' after the value of " + strconv.Quote(key))
		}
	}
	p.space()
	if p.i != len(p.b) {
		return nil, p.fail("unexpected data after the JSON object")
	}
	if !seenPoints {
		return nil, gridmap.Errorf(gridmap.EINVALID, "points is required: [[lon, lat], ...]")
	}
	return req, nil
}

type jsonScanner struct {
	b []byte
	i int
}

func (p *jsonScanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonScanner) consume(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) fail(msg string) error {
	return gridmap.Errorf(gridmap.EINVALID, "body is not a valid batch lookup at byte %d: %s", p.i, msg)
}

// str reads a JSON string.
func (p *jsonScanner) str() (string, error) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", p.fail("expected a string")
	}
	start := p.i
	escaped := false
	for p.i++; p.i < len(p.b); p.i++ {
		switch p.b[p.i] {
		case '\\':
			escaped = true
			p.i++
		case '"':
			p.i++
			raw := p.b[start:p.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", p.fail("malformed string")
			}
			if gridmap.CheckText("", s) != nil {
				return "", p.fail(`a string holds an escaped NUL (\u0000)`)
			}
			return s, nil
		}
	}
	return "", p.fail("unterminated string")
}

func (p *jsonScanner) null() bool {
	p.space()
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

func (p *jsonScanner) optionalString(key string) (string, error) {
	if p.null() {
		return "", nil
	}
	s, err := p.str()
	if err != nil {
		return "", gridmap.Errorf(gridmap.EINVALID, "%s must be a string", key)
	}
	return s, nil
}

func (p *jsonScanner) optionalNumber(key string) (*float64, error) {
	if p.null() {
		return nil, nil
	}
	v, ok := p.number()
	if !ok {
		return nil, gridmap.Errorf(gridmap.EINVALID, "%s must be a number of metres", key)
	}
	return &v, nil
}

// number reads a JSON number.
func (p *jsonScanner) number() (float64, bool) {
	p.space()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] != '-' && (p.b[p.i] < '0' || p.b[p.i] > '9') {
		return 0, false
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	if p.i == start {
		return 0, false
	}
	v, err := strconv.ParseFloat(bytesString(p.b[start:p.i]), 64)
	return v, err == nil
}

// points reads [[lon, lat], ...]; a third number (altitude) is allowed
// and ignored.
func (p *jsonScanner) points() ([][2]float64, error) {
	if !p.consume('[') {
		return nil, gridmap.Errorf(gridmap.EINVALID, "points must be an array of [lon, lat] pairs")
	}
	pts := make([][2]float64, 0, min(len(p.b)/24+1, gridmap.MaxLookupPoints))
	if p.consume(']') {
		return pts, nil
	}
	for {
		if len(pts) == gridmap.MaxLookupPoints {
			return nil, gridmap.Errorf(gridmap.ETOOLARGE, "a batch lookup takes at most %d points; split the request", gridmap.MaxLookupPoints)
		}
		pt, ok := p.point()
		if !ok {
			return nil, gridmap.Errorf(gridmap.EINVALID, "points[%d] must be [lon, lat]: two numbers, longitude first", len(pts))
		}
		pts = append(pts, pt)
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return pts, nil
		}
		return nil, p.fail("expected ',' or ']' in points")
	}
}

// point reads one [lon, lat] or [lon, lat, altitude].
func (p *jsonScanner) point() ([2]float64, bool) {
	if !p.consume('[') {
		return [2]float64{}, false
	}
	lon, ok := p.number()
	if !ok || !p.consume(',') {
		return [2]float64{}, false
	}
	lat, ok := p.number()
	if !ok {
		return [2]float64{}, false
	}
	if p.consume(',') {
		if _, ok := p.number(); !ok {
			return [2]float64{}, false
		}
	}
	if !p.consume(']') {
		return [2]float64{}, false
	}
	return [2]float64{lon, lat}, true
}

// parallelPointsBytes is the size of a points array past which it is cut
// into pieces read in parallel, and the least size of a piece.
const parallelPointsBytes = 64 << 10

// pointsOn is points, reading a large array in pieces on up to workers
// goroutines. The array is cut after the commas that follow points, each
// piece read with the same grammar; when anything is wrong (a malformed
// point, too many points, a cut that was not between two points), the
// array is read again from its start by points, which says what and
// where, exactly as a batch read in one piece.
func (p *jsonScanner) pointsOn(workers int) ([][2]float64, error) {
	start := p.i
	if workers > 1 && len(p.b)-start >= 2*parallelPointsBytes {
		if pts, end, ok := p.pointsInPieces(workers); ok {
			p.i = end
			return pts, nil
		}
	}
	p.i = start
	return p.points()
}

// pointsInPieces reads the points array at p.i in pieces; ok is false when
// it cannot be read that way (see pointsOn).
func (p *jsonScanner) pointsInPieces(workers int) (pts [][2]float64, end int, ok bool) {
	if !p.consume('[') {
		return nil, 0, false
	}
	// Cuts: each piece but the last ends just after a comma that follows a
	// point's ']'; the last ends at the array's ']'.
	pieces := min(4*workers, (len(p.b)-p.i)/parallelPointsBytes)
	cuts := []int{p.i}
	for k := 1; k < pieces; k++ {
		at := max(cuts[len(cuts)-1], p.i+(len(p.b)-p.i)*k/pieces)
		c := bytes.IndexByte(p.b[at:], ']')
		if c < 0 {
			break
		}
		q := jsonScanner{b: p.b, i: at + c + 1}
		if !q.consume(',') {
			break
		}
		cuts = append(cuts, q.i)
	}
	parts := make([][][2]float64, len(cuts))
	ends := make([]int, len(cuts))
	var wg sync.WaitGroup
	for k := range cuts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := len(p.b) // the last piece: up to the array's end
			if k+1 < len(cuts) {
				stop = cuts[k+1]
			}
			parts[k], ends[k] = readPiece(p.b, cuts[k], stop, k+1 == len(cuts))
		}()
	}
	wg.Wait()
	n := 0
	for k := range parts {
		if ends[k] < 0 {
			return nil, 0, false
		}
		n += len(parts[k])
	}
	if n > gridmap.MaxLookupPoints {
		return nil, 0, false
	}
	pts = make([][2]float64, 0, n)
	for _, part := range parts {
		pts = append(pts, part...)
	}
	return pts, ends[len(ends)-1], true
}

// readPiece reads the points from b[from:] up to stop, where the piece
// must end just after a comma; the last piece ends at the array's ']'
// instead. end is where reading stopped (after the ']' for the last), or
// -1 when the piece is not a run of well-formed points ending there.
func readPiece(b []byte, from, stop int, last bool) (pts [][2]float64, end int) {
	p := jsonScanner{b: b, i: from}
	pts = make([][2]float64, 0, (stop-from)/20+1)
	for {
		pt, ok := p.point()
		if !ok {
			return nil, -1
		}
		pts = append(pts, pt)
		switch {
		case p.consume(','):
			if p.i == stop && !last {
				return pts, stop
			}
			if p.i >= stop || len(pts) > gridmap.MaxLookupPoints {
				return nil, -1
			}
		case last && p.consume(']'):
			return pts, p.i
		default:
			return nil, -1
		}
	}
}
