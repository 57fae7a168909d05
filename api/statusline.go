package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// maxDrain bounds how much of an unexpected request body is read before the connection is
// closed, so closing it does not reset the reply away.
const maxDrain = 64 << 10

// writeStatusLine answers with nothing but "HTTP/1.0 <code> <reason>\r\n\r\n" and closes the
// connection, as Patroni does for HEAD and OPTIONS: no headers, no body. HAProxy's
// "option httpchk" reads only that. net/http always adds headers, so the connection is
// hijacked. Where it cannot be (HTTP/2, a test recorder) the reply is headers only.
func writeStatusLine(c *gin.Context, code int, logger *slog.Logger) {
	c.Status(code) // recorded for the access log; nothing is written yet
	if c.Request.ProtoMajor != 1 || !canHijack(c.Writer) {
		c.Writer.WriteHeaderNow()
		return
	}
	if c.Request.Body != nil {
		_, _ = io.CopyN(io.Discard, c.Request.Body, maxDrain)
	}
	conn, _, err := c.Writer.Hijack()
	if err != nil {
		logger.Warn("hijack health check connection failed", slog.Any("err", err))
		c.Abort()
		return
	}
	defer func() { _ = conn.Close() }()
	if _, err := fmt.Fprintf(conn, "HTTP/1.0 %d %s\r\n\r\n", code, http.StatusText(code)); err != nil {
		return // the checker went away; nothing to tell it
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// canHijack reports whether the writer under Gin's can take over the connection; Gin's own
// Hijack would panic on one that cannot.
func canHijack(w gin.ResponseWriter) bool {
	u, ok := w.(interface{ Unwrap() http.ResponseWriter })
	if !ok {
		return false
	}
	_, ok = u.Unwrap().(http.Hijacker)
	return ok
}
