package consul

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ErrPermissionDenied is returned when Consul refused a request for lack of ACL permission:
// the token (CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE) is missing, unknown, or its
// policy lacks a rule. It is a configuration error, not an outage: retrying will not help.
var ErrPermissionDenied = errors.New("consul: permission denied by ACL")

// lacksPermission finds the permission Consul names in a 403 answer, e.g. "Permission
// denied: token with AccessorID '...' lacks permission 'key:write' on \"service/pg/leader\"".
var lacksPermission = regexp.MustCompile(`lacks permission '([^']+)'(?: on "([^"]*)")?`)

// anonymousAccessor is the AccessorID of Consul's anonymous token, used when a request
// carries no token.
const anonymousAccessor = "00000000-0000-0000-0000-000000000002"

// isPermissionDenied reports whether Consul answered 403 (missing permission, or a token it
// does not know: "ACL not found").
func isPermissionDenied(err error) bool {
	return statusCode(err) == http.StatusForbidden
}

// permissionDenied wraps a 403 answer in ErrPermissionDenied with a message an operator can
// act on: which token, which permission on which resource, and where ramd's token comes from.
func permissionDenied(err error) error {
	var se api.StatusError
	body := ""
	if errors.As(err, &se) {
		body = se.Body
	}
	var parts []string
	switch {
	case strings.Contains(body, anonymousAccessor):
		parts = append(parts, "no token was given and the anonymous token is not allowed")
	case strings.Contains(strings.ToLower(body), "acl not found"):
		parts = append(parts, "Consul does not know the token")
	}
	if m := lacksPermission.FindStringSubmatch(body); m != nil {
		what := "the token lacks " + m[1]
		if m[2] != "" {
			what += fmt.Sprintf(" on %q", m[2])
		}
		parts = append(parts, what)
	}
	parts = append(parts, "set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE to a token with ramd's policy (docs/ROUTING.md)")
	return fmt.Errorf("%w (%s): %w", ErrPermissionDenied, strings.Join(parts, "; "), err)
}
