package server

import (
	"encoding/json"
	"fmt"
	"strconv"
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
func parseBatch(body []byte) (*batchRequest, error) {
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
				if req.points, err = p.points(); err != nil {
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
		bad := gridmap.Errorf(gridmap.EINVALID, "points[%d] must be [lon, lat]: two numbers, longitude first", len(pts))
		if !p.consume('[') {
			return nil, bad
		}
		lon, ok := p.number()
		if !ok || !p.consume(',') {
			return nil, bad
		}
		lat, ok := p.number()
		if !ok {
			return nil, bad
		}
		if p.consume(',') {
			if _, ok := p.number(); !ok {
				return nil, bad
			}
		}
		if !p.consume(']') {
			return nil, bad
		}
		pts = append(pts, [2]float64{lon, lat})
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return pts, nil
		}
		return nil, p.fail("expected ',' or ']' in points")
	}
}
