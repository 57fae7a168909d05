package routing

import (
	"fmt"
	"strings"
)

// ACLPolicy returns the rules (HCL) of the least-privilege Consul ACL policy of one ramd
// cluster: keyPrefix is "<namespace>/<scope>/", service the Consul service name. The same
// policy serves RAMD_MESH=true: the mesh config entries of a service need service:write on
// its name (and the redirect resolvers' names), which the service rule covers. docs/ROUTING.md
// shows it and says what each rule is for; the integration suite checks that a node runs
// with it and that each rule is needed.
func ACLPolicy(keyPrefix, service string) string {
	keyPrefix = strings.TrimLeft(keyPrefix, "/")
	if !strings.HasSuffix(keyPrefix, "/") {
		keyPrefix += "/"
	}
	return fmt.Sprintf(`key_prefix %q {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
service_prefix %q {
  policy = "write"
}
query_prefix %q {
  policy = "write"
}
agent_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
`, keyPrefix, service, service+"-")
}
