package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"github.com/paulmach/orb/geojson"
)

// An OpenAPI 3.0.3 document, as Go values marshalled to JSON. The /v1
// document (openapi_v1.go) and the OGC API - Features one build on the same
// types: newOASDocument gives a document with the shared components (the
// Error schema and responses, the security schemes), add puts an operation
// on a route given in echo's form, and schemas.of derives a JSON schema from
// the Go type a handler decodes or answers.

// oasVersion is the OpenAPI version the documents follow.
const oasVersion = "3.0.3"

// oasMediaTypeJSON is the Content-Type /openapi.json is served with.
const oasMediaTypeJSON = "application/vnd.oai.openapi+json;version=3.0"

// Names of the shared components.
const (
	oasBearer        = "bearerToken"
	oasSession       = "sessionCookie"
	oasErrorSchema   = "Error"
	oasErrorResponse = "Error" // any error not listed on the operation
)

type oasDocument struct {
	OpenAPI    string                   `json:"openapi"`
	Info       oasInfo                  `json:"info"`
	Servers    []oasServer              `json:"servers,omitempty"`
	Tags       []oasTag                 `json:"tags,omitempty"`
	Paths      map[string]oasPathItem   `json:"paths"`
	Components oasComponents            `json:"components"`
	Security   []oasSecurityRequirement `json:"security,omitempty"`

	// schemas derives component schemas from Go types.
	schemas *oasSchemas
}

type oasInfo struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

type oasServer struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

type oasTag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// oasPathItem maps a lower-case HTTP method to its operation.
type oasPathItem map[string]*oasOperation

type oasOperation struct {
	Summary     string          `json:"summary,omitempty"`
	Description string          `json:"description,omitempty"`
	OperationID string          `json:"operationId,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Parameters  []*oasParameter `json:"parameters,omitempty"`
	RequestBody *oasRequestBody `json:"requestBody,omitempty"`
	// Responses are keyed by status ("200") or "default".
	Responses map[string]*oasResponse `json:"responses"`
	// Security nil inherits the document's; a pointer to an empty list
	// opens the operation to everyone.
	Security *[]oasSecurityRequirement `json:"security,omitempty"`
}

// oasSecurityRequirement names security schemes that together satisfy an
// operation; the empty requirement allows anonymous calls.
type oasSecurityRequirement map[string][]string

type oasParameter struct {
	Name        string     `json:"name"`
	In          string     `json:"in"` // path, query, header or cookie
	Description string     `json:"description,omitempty"`
	Required    bool       `json:"required,omitempty"`
	Schema      *oasSchema `json:"schema"`
}

type oasRequestBody struct {
	Description string                  `json:"description,omitempty"`
	Required    bool                    `json:"required,omitempty"`
	Content     map[string]oasMediaType `json:"content"`
}

type oasMediaType struct {
	Schema *oasSchema `json:"schema,omitempty"`
}

type oasResponse struct {
	Ref         string                  `json:"$ref,omitempty"`
	Description string                  `json:"description,omitempty"`
	Headers     map[string]*oasHeader   `json:"headers,omitempty"`
	Content     map[string]oasMediaType `json:"content,omitempty"`
}

type oasHeader struct {
	Description string     `json:"description,omitempty"`
	Schema      *oasSchema `json:"schema"`
}

// oasSchema is the subset of the OpenAPI 3.0 Schema Object the documents
// use. A schema with only Ref set refers to a component.
type oasSchema struct {
	Ref                  string                `json:"$ref,omitempty"`
	Type                 string                `json:"type,omitempty"`
	Format               string                `json:"format,omitempty"`
	Description          string                `json:"description,omitempty"`
	Enum                 []any                 `json:"enum,omitempty"`
	Properties           map[string]*oasSchema `json:"properties,omitempty"`
	Required             []string              `json:"required,omitempty"`
	AdditionalProperties *oasSchema            `json:"additionalProperties,omitempty"`
	Items                *oasSchema            `json:"items,omitempty"`
	MinItems             *int                  `json:"minItems,omitempty"`
	MaxItems             *int                  `json:"maxItems,omitempty"`
	Minimum              *float64              `json:"minimum,omitempty"`
	Maximum              *float64              `json:"maximum,omitempty"`
	Nullable             bool                  `json:"nullable,omitempty"`
	AllOf                []*oasSchema          `json:"allOf,omitempty"`
}

type oasComponents struct {
	Schemas         map[string]*oasSchema         `json:"schemas,omitempty"`
	Responses       map[string]*oasResponse       `json:"responses,omitempty"`
	SecuritySchemes map[string]*oasSecurityScheme `json:"securitySchemes,omitempty"`
}

type oasSecurityScheme struct {
	Type        string `json:"type"` // http or apiKey
	Scheme      string `json:"scheme,omitempty"`
	In          string `json:"in,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// newOASDocument starts a document with the shared components: the Error
// schema (the JSON of every error answer), a response per error status
// (oasErrorRef), and the two ways to sign in, either of which the document
// requires unless an operation says otherwise.
func newOASDocument(info oasInfo) *oasDocument {
	d := &oasDocument{
		OpenAPI: oasVersion, Info: info, Paths: map[string]oasPathItem{},
		Components: oasComponents{
			Schemas:   map[string]*oasSchema{},
			Responses: map[string]*oasResponse{},
			SecuritySchemes: map[string]*oasSecurityScheme{
				oasBearer: {Type: "http", Scheme: "bearer",
					Description: "An API token (gridmap token create), sent as Authorization: Bearer <token>."},
				oasSession: {Type: "apiKey", In: "cookie", Name: sessionCookie,
					Description: "The session cookie POST /v1/session sets. Writes it signs in need the " + csrfHeader +
						" header with the session's csrf_token."},
			},
		},
		Security: oasSignedIn(),
	}
	d.schemas = &oasSchemas{components: d.Components.Schemas, names: map[reflect.Type]string{}}
	d.schemas.named(oasErrorSchema, errorBody{})
	d.Components.Schemas[oasErrorSchema].Description = `Every error answer: {"error": {"code", "message", "details", "request_id"}}; ` +
		"details lists problems (422), request_id identifies the request in the log (500)."
	d.Components.Schemas[oasErrorSchema].Required = []string{"error"}
	d.Components.Schemas["ErrorDetail"].Required = []string{"code", "message"}
	d.Components.Schemas["Problem"].Properties["where"] = &oasSchema{Type: "object", Description: "A GeoJSON geometry: where the problem is."}
	d.Components.Responses[oasErrorResponse] = &oasResponse{Description: "Another error (429 too many requests, 500 internal, 503 unavailable, ...)",
		Content: oasJSON(oasRef(oasErrorSchema))}
	for code, status := range statusOf {
		d.Components.Responses[strconv.Itoa(status)] = &oasResponse{
			Description: http.StatusText(status) + " (error code " + code + ")", Content: oasJSON(oasRef(oasErrorSchema))}
	}
	return d
}

// oasSignedIn is the security of an operation any signed-in caller may
// reach: a token or a session.
func oasSignedIn() []oasSecurityRequirement {
	return []oasSecurityRequirement{{oasBearer: {}}, {oasSession: {}}}
}

// add puts op on the route method, path (echo's form, "/v1/layers/:layer"),
// declaring the path parameters op does not declare itself as required
// strings, and giving it an operationId and a default error response.
// Panics on a route added twice.
func (d *oasDocument) add(method, path string, op *oasOperation) {
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			seg = "{" + name + "}"
			if !slices.ContainsFunc(op.Parameters, func(p *oasParameter) bool { return p.In == "path" && p.Name == name }) {
				op.Parameters = append(op.Parameters, &oasParameter{Name: name, In: "path", Required: true, Schema: &oasSchema{Type: "string"}})
			}
		}
		segs = append(segs, seg)
	}
	oasPath := strings.Join(segs, "/")
	item := d.Paths[oasPath]
	if item == nil {
		item = oasPathItem{}
		d.Paths[oasPath] = item
	}
	m := strings.ToLower(method)
	if item[m] != nil {
		panic("openapi: " + method + " " + path + " added twice")
	}
	if op.OperationID == "" {
		op.OperationID = m + strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				return r
			}
			return '_'
		}, strings.ReplaceAll(path, ":", ""))
	}
	if op.Responses == nil {
		op.Responses = map[string]*oasResponse{}
	}
	if op.Responses["default"] == nil {
		op.Responses["default"] = &oasResponse{Ref: "#/components/responses/" + oasErrorResponse}
	}
	item[m] = op
}

// canFail adds error responses to op for the statuses (each a shared
// component; statuses without one panic).
func (d *oasDocument) canFail(op *oasOperation, statuses ...int) {
	if op.Responses == nil {
		op.Responses = map[string]*oasResponse{}
	}
	for _, st := range statuses {
		key := strconv.Itoa(st)
		if d.Components.Responses[key] == nil {
			panic("openapi: no shared response for status " + key)
		}
		op.Responses[key] = &oasResponse{Ref: "#/components/responses/" + key}
	}
}

// marshal is the document's JSON.
func (d *oasDocument) marshal() ([]byte, error) {
	return json.MarshalIndent(d, "", "  ")
}

// oasRef refers to the component schema name.
func oasRef(name string) *oasSchema { return &oasSchema{Ref: "#/components/schemas/" + name} }

// oasJSON is content of type application/json with schema s.
func oasJSON(s *oasSchema) map[string]oasMediaType {
	return map[string]oasMediaType{echo.MIMEApplicationJSON: {Schema: s}}
}

// oasObject is an object schema with the properties given as name, schema
// pairs.
func oasObject(description string, props ...any) *oasSchema {
	s := &oasSchema{Type: "object", Description: description, Properties: map[string]*oasSchema{}}
	for i := 0; i+1 < len(props); i += 2 {
		s.Properties[props[i].(string)] = props[i+1].(*oasSchema)
	}
	return s
}

// oasArray is an array of items.
func oasArray(items *oasSchema) *oasSchema { return &oasSchema{Type: "array", Items: items} }

// oasScalar is a schema of one JSON type ("string", "integer", "number",
// "boolean") with an optional description.
func oasScalar(typ, description string) *oasSchema {
	return &oasSchema{Type: typ, Description: description}
}

// oasSchemas derives JSON schemas from Go types as encoding/json writes
// them. Named struct types become components (by type name, capitalised)
// and are referred to.
type oasSchemas struct {
	components map[string]*oasSchema
	names      map[reflect.Type]string
}

var (
	timeType       = reflect.TypeFor[time.Time]()
	geometryType   = reflect.TypeFor[geojson.Geometry]()
	featureType    = reflect.TypeFor[geojson.Feature]()
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	marshalerType  = reflect.TypeFor[json.Marshaler]()
)

// of is the schema of v's type.
func (s *oasSchemas) of(v any) *oasSchema { return s.ofType(reflect.TypeOf(v)) }

// named registers v's type as the component name and refers to it.
func (s *oasSchemas) named(name string, v any) *oasSchema {
	t := reflect.TypeOf(v)
	if prev, ok := s.names[t]; ok && prev != name {
		panic(fmt.Sprintf("openapi: %v is already the schema %s", t, prev))
	}
	s.names[t] = name
	s.components[name] = s.structSchema(t)
	return oasRef(name)
}

func (s *oasSchemas) ofType(t reflect.Type) *oasSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return &oasSchema{Type: "string", Format: "date-time"}
	case geometryType:
		return &oasSchema{Type: "object", Description: "A GeoJSON geometry (RFC 7946)."}
	case featureType:
		return &oasSchema{Type: "object", Description: "A GeoJSON Feature (RFC 7946)."}
	case rawMessageType:
		return &oasSchema{}
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return &oasSchema{Description: "JSON written by " + t.String() + "."}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &oasSchema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &oasSchema{Type: "integer"}
	case reflect.Int64, reflect.Uint64:
		return &oasSchema{Type: "integer", Format: "int64"}
	case reflect.Float32, reflect.Float64:
		return &oasSchema{Type: "number"}
	case reflect.String:
		return &oasSchema{Type: "string"}
	case reflect.Slice:
		return oasArray(s.ofType(t.Elem()))
	case reflect.Array:
		n := t.Len()
		a := oasArray(s.ofType(t.Elem()))
		a.MinItems, a.MaxItems = &n, &n
		return a
	case reflect.Map:
		return &oasSchema{Type: "object", AdditionalProperties: s.ofType(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return s.structSchema(t)
		}
		name, ok := s.names[t]
		if !ok {
			name = s.componentName(t)
			s.names[t] = name
			s.components[name] = &oasSchema{} // taken while its fields are read
			s.components[name] = s.structSchema(t)
		}
		return oasRef(name)
	}
	return &oasSchema{} // interfaces: any JSON
}

// componentName is t's name capitalised, qualified by its package when
// another type already has that name.
func (s *oasSchemas) componentName(t reflect.Type) string {
	name := t.Name()
	name = strings.ToUpper(name[:1]) + name[1:]
	if _, taken := s.components[name]; taken {
		pkg := t.PkgPath()
		name = pkg[strings.LastIndex(pkg, "/")+1:] + "." + name
	}
	return name
}

// structSchema lists t's fields as encoding/json names them; embedded
// structs without a name of their own lend their fields.
func (s *oasSchemas) structSchema(t reflect.Type) *oasSchema {
	o := &oasSchema{Type: "object", Properties: map[string]*oasSchema{}}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			for k, v := range s.structSchema(ft).Properties {
				o.Properties[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		o.Properties[name] = s.ofType(f.Type)
	}
	return o
}
