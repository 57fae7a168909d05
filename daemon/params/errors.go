package params

import (
	"errors"
	"strings"
)

// Sentinel errors of package params. A *ValueError unwraps to one of the first five.
var (
	// ErrUnknownParameter: no such parameter in this major version.
	ErrUnknownParameter = errors.New("params: unrecognized configuration parameter")
	// ErrNotInVersion: the parameter exists in other major versions, not in this one.
	ErrNotInVersion = errors.New("params: parameter not in this major version")
	// ErrInvalidValue: the value does not parse for the parameter's type or unit.
	ErrInvalidValue = errors.New("params: invalid value")
	// ErrOutOfRange: the value parses but lies outside the parameter's min .. max.
	ErrOutOfRange = errors.New("params: value out of range")
	// ErrCannotChange: the parameter is internal (read-only, fixed at build or initdb).
	ErrCannotChange = errors.New("params: parameter cannot be changed")
	// ErrCatalog: a catalog (pg_settings rows or a cache file) cannot be used.
	ErrCatalog = errors.New("params: unusable catalog")
)

// ValueError is PostgreSQL's verdict on name=value, with its message and hint. It unwraps
// to ErrUnknownParameter, ErrNotInVersion, ErrInvalidValue, ErrOutOfRange or
// ErrCannotChange.
type ValueError struct {
	Name    string // the parameter as given
	Value   string // the value as given
	Message string // modelled on PostgreSQL's, e.g. `invalid value for parameter "work_mem": "-5"`
	Hint    string // PostgreSQL's hint, when it gives one
	Kind    error  // the sentinel
}

// Error implements error: the message, then the hint.
func (e *ValueError) Error() string {
	if e.Hint == "" {
		return e.Message
	}
	return e.Message + " (" + strings.TrimSuffix(e.Hint, ".") + ")"
}

// Unwrap returns the sentinel.
func (e *ValueError) Unwrap() error { return e.Kind }
