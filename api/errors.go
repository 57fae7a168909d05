package api

import "errors"

// Sentinel errors. Handlers pass them to c.Error and errorResponses maps them to a status code.
var (
	// ErrNoStatus means the HA loop has not published its first Status yet.
	ErrNoStatus = errors.New("api: node status not available yet")
	// ErrNotFound means no route serves the path and method.
	ErrNotFound = errors.New("api: not found")
	// ErrInvalidConfig is wrapped by every error Config.Validate returns.
	ErrInvalidConfig = errors.New("api: invalid config")
)
