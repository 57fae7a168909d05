package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// errorResponses turns the first error a handler recorded with c.Error into the response:
// the sentinel picks the status code, the message is the body.
func errorResponses() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors[0].Err
		c.JSON(statusOf(err), errorBody{Error: err.Error()})
	}
}

// statusOf maps an API error to its status code.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNoStatus):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// recovery turns a handler panic into a 500 and one error log line with the stack.
func recovery(logger *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, rec any) {
		logger.Error("api handler panicked",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Any("err", rec),
			slog.String("stack", string(debug.Stack())))
		c.AbortWithStatus(http.StatusInternalServerError)
	})
}

// accessLog writes one debug line per request. Health checkers call every few seconds, so
// anything louder than debug would drown the log.
func accessLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		if !logger.Enabled(ctx, slog.LevelDebug) {
			c.Next()
			return
		}
		start := time.Now()
		c.Next()
		logger.LogAttrs(ctx, slog.LevelDebug, "api request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", c.RemoteIP()))
	}
}
