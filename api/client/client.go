package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Default timeouts of one request to one member.
const (
	// DefaultReadTimeout bounds a read: members answer reads from memory or one Consul read.
	DefaultReadTimeout = 2 * time.Second
	// DefaultWriteTimeout bounds a write: a switchover answers only once the new leader took
	// over, which takes seconds, not the milliseconds of a read.
	DefaultWriteTimeout = 60 * time.Second
)

// maxAnswer bounds the body of an answer.
const maxAnswer = 8 << 20

// HeaderJobID names the job an operation started.
const HeaderJobID = "X-Ramd-Job-Id"

// Options configure a Client. The zero value is plain http with the default timeouts and
// no credentials.
type Options struct {
	// Token is sent as "Authorization: Bearer <token>"; else Username and Password as basic
	// auth, when Username is set. Reads carry them too (members with RAMD_API_AUTH_READS).
	Token    string
	Username string
	Password string
	// TLS configures https (the CAs members' certificates chain to, a client certificate);
	// nil uses the system pool. Ignored when Transport is set.
	TLS *tls.Config
	// Transport, when set, sends the requests instead of a transport built from TLS.
	Transport http.RoundTripper
	// ReadTimeout and WriteTimeout bound one request to one member (GET, and every other
	// method); 0 means DefaultReadTimeout and DefaultWriteTimeout.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
}

// Client sends requests to the first of its members' API base URLs that answers. A
// transport error moves on to the next URL, and so does a 5xx answer to a GET (reads are
// safe to repeat); any other answer is final, because a write that was answered arrived and
// must not be repeated elsewhere.
type Client struct {
	urls []string
	opts Options
	http *http.Client
}

// New returns a client of the API at urls (base URLs like "https://10.0.0.1:8008", tried in
// order).
func New(urls []string, opts Options) *Client {
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	rt := opts.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = opts.TLS
		rt = t
	}
	return &Client{urls: urls, opts: opts, http: &http.Client{Transport: rt}}
}

// URLs returns the base URLs the client tries, in order.
func (c *Client) URLs() []string { return c.urls }

// At returns a client of the single member at base, with the same options.
func (c *Client) At(base string) *Client {
	return &Client{urls: []string{base}, opts: c.opts, http: c.http}
}

// Response is one answer of the API, whatever its status.
type Response struct {
	// BaseURL is the member that answered.
	BaseURL string
	Code    int
	// Status is the status line, e.g. "400 Bad Request".
	Status string
	Header http.Header
	Body   []byte
}

// OK reports a 2xx answer.
func (r *Response) OK() bool { return r.Code >= 200 && r.Code < 300 }

// JobID is the job the answer names in its X-Ramd-Job-Id header, "" when none.
func (r *Response) JobID() string { return r.Header.Get(HeaderJobID) }

// Reason is the server's explanation of a refusal: Reason of the error body when it is the
// API's error JSON, else the body as text.
func (r *Response) Reason() string {
	var e ErrorBody
	if json.Unmarshal(r.Body, &e) != nil || (e.Error == "" && e.Detail == "") {
		return firstNonEmpty(strings.TrimSpace(string(r.Body)), "no reason given")
	}
	return e.Reason()
}

// Error is an answer outside 2xx.
type Error struct {
	Method string
	Path   string
	*Response
}

// Error names the request, the status and the server's reason.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s refused (%s): %s", e.Method, e.Path, e.Status, e.Reason())
}

// Body decodes the API's error body; ok is false when the answer is not one.
func (e *Error) Body() (b ErrorBody, ok bool) {
	return b, json.Unmarshal(e.Response.Body, &b) == nil && (b.Error != "" || b.Detail != "")
}

// UnreachableError says that no member gave a final answer.
type UnreachableError struct {
	URLs []string
	// Errs holds, per member tried, why it gave none.
	Errs []error
}

// Error lists the members and why each did not answer.
func (e *UnreachableError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("no ramd API answered at %s (%s)", strings.Join(e.URLs, ", "), strings.Join(msgs, "; "))
}

// Unwrap returns the errors of the members tried.
func (e *UnreachableError) Unwrap() []error { return e.Errs }

// Do sends one request with body (nil, []byte sent as is, or a value sent as JSON) and
// returns the first final answer whatever its status; the error is a transport error of
// every member (an *UnreachableError) or the context's.
func (c *Client) Do(ctx context.Context, method, path string, body any, header http.Header) (*Response, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	timeout := c.opts.WriteTimeout
	if method == http.MethodGet {
		timeout = c.opts.ReadTimeout
	}
	var errs []error
	for i, base := range c.urls {
		r, err := c.once(ctx, method, base, path, raw, header, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		if method == http.MethodGet && r.Code >= 500 && i < len(c.urls)-1 {
			errs = append(errs, fmt.Errorf("%s: %s: %s", base, r.Status, r.Reason()))
			continue
		}
		return r, nil
	}
	return nil, &UnreachableError{URLs: c.urls, Errs: errs}
}

// once sends the request to one member.
func (c *Client) once(ctx context.Context, method, base, path string, body []byte, header http.Header, timeout time.Duration) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.opts.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	case c.opts.Username != "":
		req.SetBasicAuth(c.opts.Username, c.opts.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	return &Response{BaseURL: base, Code: resp.StatusCode, Status: resp.Status, Header: resp.Header, Body: b}, nil
}

// call sends the request and decodes a 2xx answer into out (nil: not decoded); any other
// answer is an *Error.
func (c *Client) call(ctx context.Context, method, path string, body any, header http.Header, out any) (*Response, error) {
	r, err := c.Do(ctx, method, path, body, header)
	if err != nil {
		return nil, err
	}
	if !r.OK() {
		return r, &Error{Method: method, Path: path, Response: r}
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return r, fmt.Errorf("unreadable answer to %s %s: %w", method, path, err)
		}
	}
	return r, nil
}

// Cluster reads GET /cluster.
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	var v Cluster
	_, err := c.call(ctx, http.MethodGet, "/cluster", nil, nil, &v)
	return v, err
}

// ClusterStatus reads GET /api/v1/cluster.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var v ClusterStatus
	_, err := c.call(ctx, http.MethodGet, "/api/v1/cluster", nil, nil, &v)
	return v, err
}

// Status reads GET /patroni, the answering member's own status.
func (c *Client) Status(ctx context.Context) (NodeStatus, error) {
	var v NodeStatus
	_, err := c.call(ctx, http.MethodGet, "/patroni", nil, nil, &v)
	return v, err
}

// History reads GET /history, oldest first.
func (c *Client) History(ctx context.Context) ([]HistoryEntry, error) {
	var v []HistoryEntry
	_, err := c.call(ctx, http.MethodGet, "/history", nil, nil, &v)
	return v, err
}

// Job reads GET /api/v1/jobs/{id}.
func (c *Client) Job(ctx context.Context, id string) (Job, error) {
	var v Job
	_, err := c.call(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, nil, &v)
	return v, err
}

// Jobs reads GET /api/v1/jobs, newest first.
func (c *Client) Jobs(ctx context.Context) ([]Job, error) {
	var v []Job
	_, err := c.call(ctx, http.MethodGet, "/api/v1/jobs", nil, nil, &v)
	return v, err
}

// SyncStandbys reads GET /api/v1/sync-standbys.
func (c *Client) SyncStandbys(ctx context.Context) (SyncView, error) {
	var v SyncView
	_, err := c.call(ctx, http.MethodGet, "/api/v1/sync-standbys", nil, nil, &v)
	return v, err
}

// SetSync changes the synchronous-replication settings (PUT /api/v1/sync-standbys).
func (c *Client) SetSync(ctx context.Context, s SyncSettings) (SyncView, error) {
	var v SyncView
	_, err := c.call(ctx, http.MethodPut, "/api/v1/sync-standbys", s, nil, &v)
	return v, err
}

// Config is the dynamic configuration with its version.
type Config struct {
	// Doc is the configuration, numbers kept as written (json.Number).
	Doc map[string]any
	// ETag is the version (the Consul index) to pass as ifMatch to a write, "" when the
	// member sent none.
	ETag string
}

// Config reads GET /config.
func (c *Client) Config(ctx context.Context) (Config, error) {
	var v Config
	r, err := c.call(ctx, http.MethodGet, "/config", nil, nil, &v.Doc)
	if err == nil && v.Doc == nil {
		err = errors.New("unreadable answer to GET /config: not a JSON object")
	}
	if r != nil {
		v.ETag = r.Header.Get("ETag")
	}
	return v, err
}

// PatchConfig applies a JSON merge patch to the configuration (PATCH /config; null deletes
// a key) and returns the result. A non-empty ifMatch (an ETag) makes it a compare-and-set:
// a configuration changed since is refused with 409.
func (c *Client) PatchConfig(ctx context.Context, patch map[string]any, ifMatch string) (map[string]any, error) {
	return c.writeConfig(ctx, http.MethodPatch, patch, ifMatch)
}

// ReplaceConfig replaces the whole configuration (PUT /config), as PatchConfig.
func (c *Client) ReplaceConfig(ctx context.Context, doc map[string]any, ifMatch string) (map[string]any, error) {
	return c.writeConfig(ctx, http.MethodPut, doc, ifMatch)
}

func (c *Client) writeConfig(ctx context.Context, method string, doc map[string]any, ifMatch string) (map[string]any, error) {
	var hdr http.Header
	if ifMatch != "" {
		hdr = http.Header{"If-Match": {ifMatch}}
	}
	var out map[string]any
	_, err := c.call(ctx, method, "/config", doc, hdr, &out)
	return out, err
}

// Pause stops automatic failover, fencing and restarts cluster-wide (POST /api/v1/pause).
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodPost, "/api/v1/pause", nil, nil, nil)
	return err
}

// Resume ends the pause (POST /api/v1/resume).
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodPost, "/api/v1/resume", nil, nil, nil)
	return err
}

// Result is the answer to an operation: the member that took it, the job that follows it
// ("" when none) and the answer's text.
type Result struct {
	BaseURL string
	JobID   string
	Message string
}

func result(r *Response) Result {
	return Result{BaseURL: r.BaseURL, JobID: r.JobID(), Message: strings.TrimSpace(string(r.Body))}
}

// operate sends an operation and returns its Result; a refusal is an *Error, whose Response
// still names the job when one was started.
func (c *Client) operate(ctx context.Context, path string, body any) (Result, error) {
	r, err := c.call(ctx, http.MethodPost, path, body, nil, nil)
	if r == nil {
		return Result{}, err
	}
	return result(r), err
}

// Switchover starts a switchover as a job (POST /api/v1/switchover).
func (c *Client) Switchover(ctx context.Context, req SwitchoverRequest) (Result, error) {
	return c.operate(ctx, "/api/v1/switchover", req)
}

// Failover starts a failover to req.Candidate as a job (POST /api/v1/failover).
func (c *Client) Failover(ctx context.Context, req SwitchoverRequest) (Result, error) {
	return c.operate(ctx, "/api/v1/failover", req)
}

// CancelSwitchover removes a pending switchover (DELETE /api/v1/switchover).
func (c *Client) CancelSwitchover(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodDelete, "/api/v1/switchover", nil, nil, nil)
	return err
}

// Restart restarts the answering member's PostgreSQL now, or at req.Schedule (Patroni's
// POST /restart); use At to pick the member.
func (c *Client) Restart(ctx context.Context, req RestartRequest) (Result, error) {
	return c.operate(ctx, "/restart", req)
}

// Reload makes the answering member reload its PostgreSQL configuration (POST /reload).
func (c *Client) Reload(ctx context.Context) (Result, error) {
	return c.operate(ctx, "/reload", nil)
}

// Reinitialize wipes the answering member's data directory and clones it again, as a job
// (POST /api/v1/reinitialize).
func (c *Client) Reinitialize(ctx context.Context, req ReinitializeRequest) (Result, error) {
	return c.operate(ctx, "/api/v1/reinitialize", req)
}

// RollingRestart restarts every member, one at a time, as a job (POST /api/v1/restart).
func (c *Client) RollingRestart(ctx context.Context, req RollingRestartRequest) (Result, error) {
	return c.operate(ctx, "/api/v1/restart", req)
}

// JobPath is the path of job id.
func JobPath(id string) string { return "/api/v1/jobs/" + id }

// Version is an ETag made from a Consul index, as GET /config sends it.
func Version(index uint64) string { return strconv.Quote(strconv.FormatUint(index, 10)) }

// ConfigWrite is the answer to a configuration write: the configuration as stored and the
// warnings about values that were accepted but are risky (Warning headers).
type ConfigWrite struct {
	Config   map[string]any
	Warnings []string
}

// PatchConfigWarnings is PatchConfig that also returns the warnings of the answer.
func (c *Client) PatchConfigWarnings(ctx context.Context, patch map[string]any, ifMatch string) (ConfigWrite, error) {
	var hdr http.Header
	if ifMatch != "" {
		hdr = http.Header{"If-Match": {ifMatch}}
	}
	var out ConfigWrite
	r, err := c.call(ctx, http.MethodPatch, "/config", patch, hdr, &out.Config)
	if r != nil {
		out.Warnings = Warnings(r.Header)
	}
	return out, err
}

// Warnings reads the texts of the Warning headers of an answer (`299 ramd "text"`).
func Warnings(h http.Header) []string {
	var out []string
	for _, w := range h.Values("Warning") {
		if i := strings.IndexByte(w, '"'); i >= 0 {
			w = strings.TrimSuffix(w[i+1:], `"`)
		}
		out = append(out, w)
	}
	return out
}

// Parameters reads the parameter catalog of the member's server (GET /api/v1/parameters).
func (c *Client) Parameters(ctx context.Context) (ParameterList, error) {
	var v ParameterList
	_, err := c.call(ctx, http.MethodGet, "/api/v1/parameters", nil, nil, &v)
	return v, err
}

// Parameter reads one parameter of the catalog.
func (c *Client) Parameter(ctx context.Context, name string) (Parameter, error) {
	var v Parameter
	_, err := c.call(ctx, http.MethodGet, "/api/v1/parameters/"+url.PathEscape(name), nil, nil, &v)
	return v, err
}

// ValidateParameters judges a parameter set without storing it. A set with refusals is
// answered with the report and a nil error; other failures are errors.
func (c *Client) ValidateParameters(ctx context.Context, p map[string]any) (ParameterReport, error) {
	var v ParameterReport
	r, err := c.call(ctx, http.MethodPost, "/api/v1/parameters/validate", ValidateParametersRequest{Parameters: p}, nil, &v)
	if err != nil && r != nil && r.Code == http.StatusUnprocessableEntity && json.Unmarshal(r.Body, &v) == nil {
		return v, nil
	}
	return v, err
}

// TuneParameters asks for tuning advice for the member's node.
func (c *Client) TuneParameters(ctx context.Context, req TuneRequest) (TuneResult, error) {
	var v TuneResult
	_, err := c.call(ctx, http.MethodPost, "/api/v1/parameters/tune", req, nil, &v)
	return v, err
}

// ClusterHealth reads GET /api/v1/cluster/health. The verdict unhealthy comes with 503 and
// is returned with no error.
func (c *Client) ClusterHealth(ctx context.Context) (ClusterHealth, error) {
	var v ClusterHealth
	r, err := c.Do(ctx, http.MethodGet, "/api/v1/cluster/health", nil, nil)
	if err != nil {
		return v, err
	}
	if r.Code != http.StatusOK && r.Code != http.StatusServiceUnavailable {
		return v, &Error{Method: http.MethodGet, Path: "/api/v1/cluster/health", Response: r}
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return v, fmt.Errorf("decode cluster health: %w", err)
	}
	return v, nil
}

// ClusterMetrics reads GET /api/v1/cluster/metrics.
func (c *Client) ClusterMetrics(ctx context.Context) (ClusterMetrics, error) {
	var v ClusterMetrics
	_, err := c.call(ctx, http.MethodGet, "/api/v1/cluster/metrics", nil, nil, &v)
	return v, err
}
