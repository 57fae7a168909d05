package api

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
)

// Auth are the credentials that mutating requests (POST, PUT, PATCH, DELETE) must carry:
// basic auth with Username and Password, or a bearer Token. Read-only endpoints stay open,
// unless Reads is set: then every read but the health checks needs them too.
//
// A client certificate verified under RAMD_API_VERIFY_CLIENT is a transport check and never
// replaces these credentials: when they are configured, a request with a valid certificate
// still has to carry them.
type Auth struct {
	Username string
	Password string
	Token    string
	// Reads makes GET, HEAD and OPTIONS require the credentials too, except on the health
	// checks (healthPaths and probePaths), which load balancers call without any.
	Reads bool
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool { return a.Username != "" || a.Token != "" }

// WithAuth makes the mutating endpoints, and with a.Reads the other reads, require a.
func WithAuth(a Auth) Option { return func(o *routerOptions) { o.auth = a } }

// authSource is where requireAuth reads the credentials: the live state when given, else
// the fixed ones.
func (o *routerOptions) authSource() func() Auth {
	if o.authFn != nil {
		return o.authFn
	}
	a := o.auth
	return func() Auth { return a }
}

// requireAuth rejects a request that needs credentials and lacks valid ones with 401.
// Comparisons are constant-time; credentials are never logged.
func requireAuth(current func() Auth) gin.HandlerFunc {
	return func(c *gin.Context) {
		a := current()
		read := isRead(c.Request.Method)
		if !a.Enabled() || (read && !a.protectsRead(c)) || a.allows(c.GetHeader("Authorization")) {
			c.Next()
			return
		}
		detail := "this endpoint changes the cluster: send basic auth or a bearer token"
		if read {
			detail = "reads need credentials on this node (RAMD_API_AUTH_READS): send basic auth or a bearer token"
		}
		c.Header("WWW-Authenticate", `Basic realm="ramd"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, client.ErrorBody{Error: "unauthorized", Detail: detail})
	}
}

func isRead(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// protectsRead reports whether a read needs credentials: with Reads, every read that is not a
// health check. A health check is a request routed to a health or probe path, or one without
// a route whose first path segment names one ("/replica/", "/primary/x"), which
// handlers.fallback answers with the health handler. Every other unrouted read needs
// credentials, so a path the fallback might serve another way fails closed.
func (a Auth) protectsRead(c *gin.Context) bool {
	if !a.Reads {
		return false
	}
	route := c.FullPath()
	if route == "" {
		route = "/" + firstSegment(c.Request.URL.Path)
	}
	return !slices.Contains(healthPaths, route) && !slices.Contains(probePaths, route)
}

func (a Auth) allows(header string) bool {
	scheme, value, ok := strings.Cut(header, " ")
	if !ok {
		return false
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return a.Token != "" && subtle.ConstantTimeCompare([]byte(value), []byte(a.Token)) == 1
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil || a.Username == "" {
			return false
		}
		user, pass, _ := strings.Cut(string(raw), ":")
		u := subtle.ConstantTimeCompare([]byte(user), []byte(a.Username))
		p := subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password))
		return u&p == 1
	}
	return false
}
