package server

import (
	"bufio"
	"net/http"

	"github.com/labstack/echo/v4"
)

// featureStream writes a GeoJSON FeatureCollection while the database
// sends its features, so no page or layer is held whole. An error before
// the collection has begun is answered as usual; after it, the error is
// logged and the connection reset, since a body that ended normally would
// read as a whole collection to the client.
type featureStream struct {
	s       *Server
	res     *echo.Response
	w       *bufio.Writer
	started bool
	n       int
}

func (s *Server) newFeatureStream(c echo.Context) *featureStream {
	res := c.Response()
	return &featureStream{s: s, res: res, w: bufio.NewWriterSize(res, 64<<10)}
}

// begin sends the status and the collection's opening: members are JSON
// object members ("numberMatched":3,...) written before "features".
func (f *featureStream) begin(members []byte) error {
	f.res.Header().Set(echo.HeaderContentType, mediaGeoJSON)
	f.res.WriteHeader(http.StatusOK)
	f.started = true
	_, _ = f.w.WriteString(`{"type":"FeatureCollection",`)
	if len(members) > 0 {
		_, _ = f.w.Write(members)
		_ = f.w.WriteByte(',')
	}
	_, err := f.w.WriteString(`"features":[`)
	return err
}

// add writes one feature, beginning the collection if need be.
func (f *featureStream) add(feature []byte) error {
	if !f.started {
		if err := f.begin(nil); err != nil {
			return err
		}
	}
	if f.n > 0 {
		_ = f.w.WriteByte(',')
	}
	_ = f.w.WriteByte('\n')
	f.n++
	_, err := f.w.Write(feature)
	return err
}

// end closes the collection after the features, or handles err as the
// type's comment says; what and attrs describe the stream in the log.
func (f *featureStream) end(err error, what string, attrs ...any) error {
	if err != nil && !f.started {
		return err
	}
	if err != nil {
		f.s.logger.Warn(what+" cut short", append(attrs, "features", f.n, "err", err,
			"request_id", f.res.Header().Get(echo.HeaderXRequestID))...)
		panic(http.ErrAbortHandler)
	}
	if !f.started {
		if err := f.begin(nil); err != nil {
			return err
		}
	}
	_, _ = f.w.WriteString("\n]}\n")
	return f.w.Flush()
}
