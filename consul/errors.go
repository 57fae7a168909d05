package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// statusCode returns the HTTP status of an api error, or 0 when Consul did not answer
// (transport error, timeout, cancellation).
func statusCode(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// isTransport reports whether err is a failure to get an answer at all, as opposed to an
// HTTP error answer.
func isTransport(err error) bool {
	return err != nil && statusCode(err) == 0
}

// isNotFound reports whether Consul answered 404.
func isNotFound(err error) bool {
	return statusCode(err) == http.StatusNotFound
}

// bodyContains reports whether Consul answered with an error whose body contains s
// (case-insensitive). Consul reports some state errors only as text in a 500 answer.
func bodyContains(err error, s string) bool {
	var se api.StatusError
	if !errors.As(err, &se) {
		return false
	}
	return strings.Contains(strings.ToLower(se.Body), strings.ToLower(s))
}

// translate maps an api error to this package's vocabulary: transport errors, timeouts and
// 5xx answers wrap ErrUnavailable; 403 wraps ErrPermissionDenied (acl.go); other answers
// (4xx) are returned as they are. When the caller's ctx was cancelled the error is returned
// unchanged (it wraps context.Canceled): the caller gave up, Consul is not to blame. ctx is
// the caller's context.
func (c *Client) translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	code := statusCode(err)
	switch {
	case code >= http.StatusInternalServerError:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case isPermissionDenied(err):
		return permissionDenied(err)
	case code != 0:
		return err
	case errors.Is(ctx.Err(), context.Canceled):
		return err
	default:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}
