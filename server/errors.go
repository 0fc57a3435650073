package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/gridmap/gridmap"
	"github.com/labstack/echo/v4"
)

// statusOf maps each error code to its one HTTP status.
var statusOf = map[string]int{
	gridmap.EINVALID:       http.StatusBadRequest,
	gridmap.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	gridmap.ENOTFOUND:      http.StatusNotFound,
	gridmap.ECONFLICT:      http.StatusConflict,
	gridmap.EPRECONDITION:  http.StatusPreconditionFailed,
	gridmap.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	gridmap.EUNAUTHORIZED:  http.StatusUnauthorized,
	gridmap.EFORBIDDEN:     http.StatusForbidden,
	gridmap.ETIMEOUT:       http.StatusRequestTimeout,
	gridmap.ETOOMANY:       http.StatusTooManyRequests,
	gridmap.EUNAVAILABLE:   http.StatusServiceUnavailable,
	gridmap.EINTERNAL:      http.StatusInternalServerError,
}

// codeOf maps statuses echo itself produces (unknown route, wrong method,
// body over the limit) back to error codes.
var codeOf = map[int]string{
	http.StatusBadRequest:            gridmap.EINVALID,
	http.StatusNotFound:              gridmap.ENOTFOUND,
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: gridmap.ETOOLARGE,
	http.StatusUnsupportedMediaType:  gridmap.EINVALID,
	http.StatusUnauthorized:          gridmap.EUNAUTHORIZED,
	http.StatusForbidden:             gridmap.EFORBIDDEN,
	http.StatusRequestTimeout:        gridmap.ETIMEOUT,
	http.StatusTooManyRequests:       gridmap.ETOOMANY,
	http.StatusServiceUnavailable:    gridmap.EUNAVAILABLE,
}

// statusClientGone is the status a request is counted and logged with when
// its client went away before it was answered (nginx's 499, "client closed
// request"): no client reads it, and no error of the service's made it.
const statusClientGone = 499

// retryAfter is how many seconds a 503 asks clients to wait before trying
// again: long enough for a queue for database connections to drain.
const retryAfter = "5"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Details   []gridmap.Problem `json:"details,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// handleError is the one place errors become HTTP responses. Internal errors
// are logged with the request id and reach the client only as that id.
// Under the Open311 prefix every error, a refused api_key or a rate limit
// as much as a handler's, has GeoReport v2's shape, [{"code",
// "description"}]: Open311 clients read no other.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, body := s.problemOf(err, c)
	if status == statusClientGone {
		c.Response().WriteHeader(status) // counted and logged so; nobody reads a body
		return
	}
	switch {
	case c.Request().Method == http.MethodHead:
		err = c.NoContent(status)
	case underOpen311(c.Request().URL.Path):
		if body.Code == gridmap.EINTERNAL {
			body.Message = "internal error; request id " + body.RequestID
		}
		err = c.JSON(status, []open311Error{{Code: status, Description: body.Message}})
	default:
		err = c.JSON(status, errorBody{Error: body})
	}
	if err != nil {
		s.logger.Warn("writing error response", "err", err)
	}
}

// problemOf decides the status and the body of an error answer, for the
// JSON API and Open311 alike: 408 when the request's body did not arrive
// in time, whatever its handler made of that; the status of its gridmap
// code; 503 when the
// request's deadline stopped the work or the database could not do it
// (unreachable, read-only, out of disk), statusClientGone when the client
// went away and the work stopped for it (a cancellation), 500 with only a
// request id for the rest (logged). A 503 also sets Retry-After.
func (s *Server) problemOf(err error, c echo.Context) (int, errorDetail) {
	status, body := http.StatusInternalServerError, errorDetail{Code: gridmap.EINTERNAL, RequestID: requestID(c)}
	var ge *gridmap.Error
	var he *echo.HTTPError
	switch {
	case bodyTimedOut(c.Request()):
		// The client was too slow to send what the handler read (a
		// decoder's "invalid JSON" would mislead it), and nothing was
		// done with half a body.
		ge = gridmap.Errorf(gridmap.ETIMEOUT, "the request's body did not all arrive in time; send it again")
	case errors.As(err, &ge): // answered by its code
	case errors.Is(err, context.Canceled) && clientGone(c.Request().Context()):
		// The client went away and the work stopped with it: not the
		// service's failing. (net/http also cancels a request whose body
		// read timed out or whose client closed its side after sending:
		// their errors are not the cancellation, and are answered as
		// such.)
		return statusClientGone, body
	case errors.Is(c.Request().Context().Err(), context.DeadlineExceeded):
		// The request's deadline stopped its work, whatever error that
		// surfaced as on the way (the stores translate theirs).
		ge = gridmap.Errorf(gridmap.EUNAVAILABLE, "the request took longer than this service allows and was stopped; try again shortly, or ask for less at once")
	}
	if ge == nil && s.deps.Unavailable != nil {
		ge = s.deps.Unavailable(err)
	}
	switch {
	case ge != nil:
		status = statusOf[ge.Code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		body.Code, body.Message, body.Details = ge.Code, ge.Message, ge.Details
	case errors.As(err, &he) && he.Code < 500:
		status = he.Code
		body.Code = codeOf[he.Code]
		if body.Code == "" {
			body.Code = gridmap.EINVALID
		}
		body.Message = http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			body.Message = m
		}
		if he.Code == http.StatusNotFound {
			body.Message = "no such endpoint: " + c.Request().Method + " " + c.Request().URL.Path
		} else if he.Code == http.StatusRequestEntityTooLarge {
			body.Message = "request body is larger than this endpoint accepts"
		}
	}
	switch {
	case status == http.StatusServiceUnavailable:
		s.logger.Warn("unavailable", "request_id", requestID(c), "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	case status >= 500:
		s.logger.Error("internal error", "request_id", requestID(c), "method", c.Request().Method,
			"path", c.Request().URL.Path, "err", err)
	}
	if status >= 500 && (body.Message == "" || body.Code == gridmap.EINTERNAL) {
		body.Message = "internal error; quote request_id when reporting it"
	}
	switch {
	case ge != nil && ge.RetryAfter > 0:
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ge.RetryAfter.Seconds()))))
	case status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", retryAfter)
	}
	return status, body
}

// watchedBody is a request's body that remembers a read of it timing out
// (the server's ReadTimeout, or an import's own read deadline).
type watchedBody struct {
	io.ReadCloser
	timedOut atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut.Store(true)
	}
	return n, err
}

// watchedBodyKey is the context key of a request's watchedBody: whoever
// reads the body may wrap it again (a limit on its size).
type watchedBodyKey struct{}

// watchBody returns r with its body, if it has one, remembering a read
// timing out.
func watchBody(r *http.Request) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	b := &watchedBody{ReadCloser: r.Body}
	r = r.WithContext(context.WithValue(r.Context(), watchedBodyKey{}, b))
	r.Body = b
	return r
}

// bodyTimedOut reports whether a read of r's body timed out.
func bodyTimedOut(r *http.Request) bool {
	b, ok := r.Context().Value(watchedBodyKey{}).(*watchedBody)
	return ok && b.timedOut.Load()
}
