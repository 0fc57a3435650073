package geo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gridmap/gridmap"
	"github.com/paulmach/orb/geojson"
)

// FieldMap names the feature properties that carry a grid's code, name,
// parent code and level. Empty Level means every feature takes DefaultLevel.
type FieldMap struct {
	Code, Name, Parent, Level string
	DefaultLevel              string
}

// DefaultFieldMap reads the properties gridmap itself writes, so exported
// grids import back unchanged.
var DefaultFieldMap = FieldMap{Code: "code", Name: "name", Parent: "parent", Level: "level"}

// reserved are the properties gridmap writes itself; they are never stored as
// free attributes.
var reserved = map[string]bool{
	"code": true, "name": true, "level": true, "parent": true, "version": true,
	"valid_from": true, "valid_to": true, "people": true, "layer": true,
}

// FeatureReader streams features out of a GeoJSON FeatureCollection, a
// single Feature, or a GeoJSON text sequence (RFC 8142, or one Feature per
// line), holding at most a few megabytes of them (and one feature of any
// size) in memory at a time. A feature that cannot be
// decoded at all (bad JSON inside it) stops the stream with EINVALID naming
// its index, as does an escaped NUL (\u0000) anywhere; JSON nested deeper
// than gridmap.MaxJSONDepth stops it with EUNPROCESSABLE as soon as it is
// read. A feature that decodes but lacks a code, has a geometry of the wrong
// kind or one past gridmap.CheckGeometrySize's limits is still returned, for
// the importer to reject with a reason.
//
// Features are read a few megabytes ahead and decoded on every core: the
// reading is a quick scan, the decoding most of an import's time in Go.
type FeatureReader struct {
	dec    *json.Decoder
	fields FieldMap
	index  int // of the next feature read
	// inArray is true while inside a FeatureCollection's "features" array.
	inArray bool
	// ready are the features decoded ahead, in order; err is what ended the
	// reading (io.EOF at the end), returned once ready is drained.
	ready []*gridmap.Feature
	err   error
}

// A FeatureReader reads ahead at most decodeAheadFeatures features or,
// past one feature, decodeAheadBytes of their JSON.
const (
	decodeAheadFeatures = 1024
	decodeAheadBytes    = 4 << 20
)

// NewFeatureReader reads features from r, mapping properties by fields.
func NewFeatureReader(r io.Reader, fields FieldMap) *FeatureReader {
	return &FeatureReader{dec: json.NewDecoder(gridmap.LimitJSON(&recordSeparatorFilter{r: bufio.NewReaderSize(r, 1<<16)})), fields: fields}
}

// Next returns the next feature or io.EOF.
func (fr *FeatureReader) Next() (*gridmap.Feature, error) {
	if len(fr.ready) == 0 && fr.err == nil {
		fr.readAhead()
	}
	if len(fr.ready) == 0 {
		return nil, fr.err
	}
	f := fr.ready[0]
	fr.ready[0] = nil
	fr.ready = fr.ready[1:]
	return f, nil
}

// readAhead reads the next features' JSON and decodes them on every core
// into fr.ready; what stops the reading early is kept in fr.err.
func (fr *FeatureReader) readAhead() {
	first := fr.index
	var raws [][]byte
	for size := 0; len(raws) < decodeAheadFeatures && size < decodeAheadBytes; {
		raw, err := fr.nextRaw()
		if err != nil {
			fr.err = err
			break
		}
		raws = append(raws, raw)
		size += len(raw)
	}
	fr.ready = make([]*gridmap.Feature, len(raws))
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	if workers <= 1 {
		for i, raw := range raws {
			fr.ready[i] = decodeFeature(raw, first+i, fr.fields)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(raws); i = int(next.Add(1) - 1) {
				fr.ready[i] = decodeFeature(raws[i], first+i, fr.fields)
			}
		}()
	}
	wg.Wait()
}

// nextRaw returns the JSON of the next feature, or io.EOF.
func (fr *FeatureReader) nextRaw() ([]byte, error) {
	for {
		if fr.inArray {
			if fr.dec.More() {
				var raw json.RawMessage
				if err := fr.dec.Decode(&raw); err != nil {
					return nil, fr.syntax(err)
				}
				fr.index++
				return raw, nil
			}
			if _, err := fr.dec.Token(); err != nil { // ']'
				return nil, fr.syntax(err)
			}
			fr.inArray = false
			if err := fr.finishObject(); err != nil {
				return nil, err
			}
			continue
		}
		tok, err := fr.dec.Token()
		if err == io.EOF {
			return nil, io.EOF
		} else if err != nil {
			return nil, fr.syntax(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return nil, gridmap.Errorf(gridmap.EINVALID, "expected a GeoJSON FeatureCollection or Feature object, found %v", tok)
		}
		feature, err := fr.readTopObject()
		if err != nil {
			return nil, err
		}
		if feature != nil {
			fr.index++
			return feature, nil
		}
	}
}

// readTopObject reads members of a top-level object until it meets a
// "features" array (then streams it) or the object ends (then it must have
// been a Feature, whose JSON it returns).
func (fr *FeatureReader) readTopObject() (feature []byte, err error) {
	members := map[string]json.RawMessage{}
	for fr.dec.More() {
		tok, err := fr.dec.Token()
		if err != nil {
			return nil, fr.syntax(err)
		}
		key, _ := tok.(string)
		if key == "features" {
			if t, err := fr.dec.Token(); err != nil {
				return nil, fr.syntax(err)
			} else if d, ok := t.(json.Delim); !ok || d != '[' {
				return nil, gridmap.Errorf(gridmap.EINVALID, `"features" must be an array of GeoJSON Features`)
			}
			if typ := typeOf(members); typ != "" && typ != "FeatureCollection" {
				return nil, gridmap.Errorf(gridmap.EINVALID, `an object with "features" must be a FeatureCollection, not %q`, typ)
			}
			fr.inArray = true
			return nil, nil
		}
		var raw json.RawMessage
		if err := fr.dec.Decode(&raw); err != nil {
			return nil, fr.syntax(err)
		}
		members[key] = raw
	}
	if _, err := fr.dec.Token(); err != nil { // '}'
		return nil, fr.syntax(err)
	}
	switch typ := typeOf(members); typ {
	case "Feature":
		return json.Marshal(members)
	case "FeatureCollection":
		return nil, nil // empty collection without "features"
	default:
		return nil, gridmap.Errorf(gridmap.EINVALID, "expected a GeoJSON FeatureCollection or Feature, found type %q", typ)
	}
}

// finishObject skips the members of a FeatureCollection after its features.
func (fr *FeatureReader) finishObject() error {
	for fr.dec.More() {
		if _, err := fr.dec.Token(); err != nil {
			return fr.syntax(err)
		}
		var skip json.RawMessage
		if err := fr.dec.Decode(&skip); err != nil {
			return fr.syntax(err)
		}
	}
	if _, err := fr.dec.Token(); err != nil {
		return fr.syntax(err)
	}
	return nil
}

// decodeFeature decodes feature idx from its JSON. A feature that is not
// valid GeoJSON comes back with DecodeError set, and its code when its
// properties (or id) still say one.
func decodeFeature(raw []byte, idx int, fields FieldMap) *gridmap.Feature {
	var gf geojson.Feature
	if err := unmarshalFeature(raw, &gf); err != nil {
		return undecodable(raw, idx, fields, err)
	}
	f := FeatureFromGeoJSON(&gf, idx, fields)
	if err := gridmap.CheckGeometrySize(gf.Geometry); err != nil {
		f.Geometry, f.DecodeError = nil, gridmap.ErrorMessage(err)
	}
	return f
}

// unmarshalFeature decodes a GeoJSON Feature. The GeoJSON decoder panics
// on some malformed geometries (a null in a GeometryCollection); features
// are decoded on the reader's own goroutines, where a panic would take the
// process down, so it comes back as an error instead.
func unmarshalFeature(raw []byte, gf *geojson.Feature) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("a geometry in it is null or malformed")
		}
	}()
	return json.Unmarshal(raw, gf)
}

// undecodable is feature idx that is not valid GeoJSON, for why: the
// importer reports it with the others, by index and by code when its
// properties (or id) still say one.
func undecodable(raw []byte, idx int, fields FieldMap, why error) *gridmap.Feature {
	var loose struct {
		ID         any            `json:"id"`
		Properties map[string]any `json:"properties"`
	}
	_ = json.Unmarshal(raw, &loose)
	code := propertyString(loose.Properties[fields.Code])
	if code == "" {
		code = propertyString(loose.ID)
	}
	return &gridmap.Feature{Index: idx, Code: code, DecodeError: "not a valid GeoJSON Feature: " + why.Error()}
}

// FeatureFromGeoJSON maps a decoded GeoJSON Feature to a grid feature.
func FeatureFromGeoJSON(gf *geojson.Feature, idx int, fields FieldMap) *gridmap.Feature {
	f := &gridmap.Feature{Index: idx, Geometry: gf.Geometry, Attributes: map[string]any{}}
	props := map[string]any(gf.Properties)
	f.Code = propertyString(props[fields.Code])
	if f.Code == "" && gf.ID != nil {
		f.Code = propertyString(gf.ID)
	}
	f.Name = propertyString(props[fields.Name])
	f.Parent = propertyString(props[fields.Parent])
	if fields.Level != "" {
		f.Level = propertyString(props[fields.Level])
	}
	if f.Level == "" {
		f.Level = fields.DefaultLevel
	}
	if people, ok := props["people"]; ok {
		f.People = decodePeople(people)
	}
	for k, v := range props {
		if reserved[k] || k == fields.Code || k == fields.Name || k == fields.Parent || k == fields.Level {
			continue
		}
		f.Attributes[k] = v
	}
	return f
}

func decodePeople(v any) []gridmap.Person {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var people []gridmap.Person
	if json.Unmarshal(b, &people) != nil {
		return nil
	}
	return people
}

func (fr *FeatureReader) syntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return gridmap.Errorf(gridmap.EINVALID, "input is not valid JSON near byte %d (feature %d): %v", se.Offset, fr.index, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return gridmap.Errorf(gridmap.EINVALID, "input ends in the middle of feature %d", fr.index)
	}
	var ge *gridmap.Error
	if errors.As(err, &ge) {
		return gridmap.Errorf(ge.Code, "%s (reading feature %d)", ge.Message, fr.index)
	}
	return fmt.Errorf("reading features: %w", err)
}

func typeOf(members map[string]json.RawMessage) string {
	var t string
	_ = json.Unmarshal(members["type"], &t)
	return t
}

// propertyString turns a property value into a code or name: numbers print
// without exponent or trailing zeros (borocode 1 becomes "1").
func propertyString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return strings.TrimSpace(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// recordSeparatorFilter turns RFC 8142 record separators into spaces so a
// GeoJSON text sequence reads as a stream of JSON values.
type recordSeparatorFilter struct{ r io.Reader }

func (f *recordSeparatorFilter) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	for i := range p[:n] {
		if p[i] == 0x1e {
			p[i] = ' '
		}
	}
	return n, err
}
