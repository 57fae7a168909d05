package api

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Auth are the credentials that mutating requests (POST, PUT, PATCH, DELETE) must carry:
// basic auth with Username and Password, or a bearer Token. Read-only endpoints, the health
// checks among them, stay open.
type Auth struct {
	Username string
	Password string
	Token    string
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool { return a.Username != "" || a.Token != "" }

// WithAuth makes the mutating endpoints require a.
func WithAuth(a Auth) Option { return func(o *routerOptions) { o.auth = a } }

// requireAuth rejects a mutating request without valid credentials with 401. Comparisons are
// constant-time; credentials are never logged.
func requireAuth(a Auth) gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			c.Next()
			return
		}
		if !a.Enabled() || a.allows(c.GetHeader("Authorization")) {
			c.Next()
			return
		}
		c.Header("WWW-Authenticate", `Basic realm="ramd"`)
		c.AbortWithStatusJSON(http.StatusUnauthorized, fieldErrorBody{Error: "unauthorized", Detail: "this endpoint changes the cluster: send basic auth or a bearer token"})
	}
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
