package gridmap

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to exactly one HTTP status in the server's error handler,
// so a store or a checker chooses the code and never the status.
const (
	EINVALID       = "invalid"             // malformed input: 400
	EUNPROCESSABLE = "unprocessable"       // well-formed input that breaks a rule: 422
	ENOTFOUND      = "not_found"           // 404
	ECONFLICT      = "conflict"            // 409
	EPRECONDITION  = "precondition_failed" // stale If-Match: 412
	ETOOLARGE      = "too_large"           // 413
	EUNAUTHORIZED  = "unauthorized"        // 401
	EFORBIDDEN     = "forbidden"           // 403
	ETIMEOUT       = "request_timeout"     // the body did not arrive in time: 408
	ETOOMANY       = "too_many_requests"   // 429, with Error.RetryAfter
	EUNAVAILABLE   = "unavailable"         // 503
	EINTERNAL      = "internal"            // 500
)

// Error is an error a client can act on: its Message says what to fix, and
// Details lists the individual problems (one per rejected feature, say).
// Anything that is not an *Error is internal and never shown to clients.
type Error struct {
	Code    string
	Message string
	Details []Problem
	// RetryAfter is how long a client should wait before trying again
	// (ETOOMANY, EUNAVAILABLE); 0 leaves the default.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if len(e.Details) == 0 {
		return fmt.Sprintf("gridmap: %s: %s", e.Code, e.Message)
	}
	return fmt.Sprintf("gridmap: %s: %s (%d problems)", e.Code, e.Message, len(e.Details))
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain,
// EINTERNAL for any other error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return "" // before e is declared: errors.As moves it to the heap
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the message of the
// first *Error in its chain, or a generic one for internal errors.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Problem kinds used in 422 details.
const (
	ProblemInvalidGeometry = "invalid_geometry"
	ProblemOutsideParent   = "outside_parent"
	ProblemOverlapsSibling = "overlaps_sibling"
	ProblemBadCode         = "bad_code"
	ProblemUnknownParent   = "unknown_parent"
	ProblemUnknownLevel    = "unknown_level"
	ProblemDuplicateCode   = "duplicate_code"
	ProblemMissingField    = "missing_field"
	ProblemRepaired        = "repaired_geometry"
)

// Problem is one thing wrong with (or done to) one input item.
// Index is the item's position in its input (0-based) when it came from a file or a list.
type Problem struct {
	Kind    string   `json:"kind"`
	Index   *int     `json:"index,omitempty"`
	Codes   []string `json:"codes,omitempty"`
	Message string   `json:"message"`
	AreaM2  *float64 `json:"area_m2,omitempty"`
	Where   any      `json:"where,omitempty"`
}
