package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// writeTimeout bounds one mutating request: a switchover answers only once the new leader
// took over, which takes seconds, not the milliseconds of a read.
const writeTimeout = 60 * time.Second

// reply is one HTTP answer of the API.
type reply struct {
	base   string // the API URL that answered
	status string // "400 Bad Request"
	code   int
	header http.Header
	body   []byte
}

// ok reports a 2xx answer.
func (r reply) ok() bool { return r.code >= 200 && r.code < 300 }

// apiError is the API's error body, {error, detail, field, value, errors}.
type apiError struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	// Errors lists every refused field of a refused document.
	Errors []struct {
		Field  string `json:"field"`
		Value  any    `json:"value"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// reason is the server's explanation of a refusal: error, detail and field when the body is
// the API's error JSON, else the body as text.
func (r reply) reason() string {
	var e apiError
	if json.Unmarshal(r.body, &e) != nil || (e.Error == "" && e.Detail == "") {
		return firstNonEmpty(strings.TrimSpace(string(r.body)), "no reason given")
	}
	if len(e.Errors) > 1 {
		// One line per refused field, so a user fixing a document sees them all at once.
		lines := []string{fmt.Sprintf("%s: %d fields refused", firstNonEmpty(e.Error, "refused"), len(e.Errors))}
		for _, fe := range e.Errors {
			v, _ := json.Marshal(fe.Value)
			lines = append(lines, fmt.Sprintf("  %s = %s: %s", fe.Field, v, fe.Reason))
		}
		return strings.Join(lines, "\n")
	}
	parts := []string{}
	for _, p := range []string{e.Error, e.Detail} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, ": ")
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// do sends a request to the first API URL that answers and returns that answer whatever its
// status: an answer means a write arrived, so it is not repeated elsewhere. A transport error
// moves on to the next URL, and so does a 5xx answer to a GET (reads are safe to repeat).
// Every request carries the credentials from the environment.
func (c *client) do(ctx context.Context, method, path string, body []byte, header http.Header, timeout time.Duration) (reply, error) {
	hc := *c.http
	hc.Timeout = timeout
	var errs []string
	for _, base := range c.urls {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return reply{}, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		authorize(req) // members with RAMD_API_AUTH_READS protect reads too
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return reply{}, ctx.Err()
			}
			errs = append(errs, err.Error())
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err != nil {
			return reply{}, fmt.Errorf("%s %s: %w", method, base+path, err)
		}
		r := reply{base: base, status: resp.Status, code: resp.StatusCode, header: resp.Header, body: b}
		if method == http.MethodGet && r.code >= 500 && base != c.urls[len(c.urls)-1] {
			errs = append(errs, fmt.Sprintf("%s: %s: %s", base, r.status, r.reason()))
			continue
		}
		return r, nil
	}
	return reply{}, fmt.Errorf("no ramd API answered at %s (%s)", strings.Join(c.urls, ", "), strings.Join(errs, "; "))
}

// writeJSON writes body to w indented by two spaces, followed by a newline.
func writeJSON(w io.Writer, body []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return fmt.Errorf("invalid JSON answer: %w", err)
	}
	out.WriteByte('\n')
	_, err := out.WriteTo(w)
	return err
}
