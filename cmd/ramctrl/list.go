package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// requestTimeout bounds one request to one API URL.
const requestTimeout = 2 * time.Second

// cluster is the part of GET /cluster that ramctrl shows (Patroni's cluster_as_json).
type cluster struct {
	Scope   string   `json:"scope"`
	Pause   bool     `json:"pause"`
	Members []member `json:"members"`
}

type member struct {
	Name     string          `json:"name"`
	Role     string          `json:"role"`
	State    string          `json:"state"`
	APIURL   string          `json:"api_url"`
	Host     string          `json:"host"`
	Port     int             `json:"port"`
	Timeline int             `json:"timeline"`
	Lag      json.RawMessage `json:"lag"`
}

// parseAPIURLs splits a comma-separated list of API base URLs; "host:port" means http.
func parseAPIURLs(s string) ([]string, error) {
	var urls []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		u, err := url.Parse(part)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("invalid API URL %q", part)
		}
		urls = append(urls, strings.TrimRight(u.String(), "/"))
	}
	if len(urls) == 0 {
		return nil, errors.New("no API URL given")
	}
	return urls, nil
}

// client asks the first of its API URLs that answers.
type client struct {
	urls []string
	http *http.Client
}

func newClient(urls []string) *client {
	return &client{urls: urls, http: &http.Client{Timeout: requestTimeout, Transport: apiTransport()}}
}

// get returns the body of a 200 answer to GET path from the first URL that gives one.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	var errs []string
	for _, base := range c.urls {
		body, err := c.getOne(ctx, base+path)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("no ramd API answered at %s (%s)", strings.Join(c.urls, ", "), strings.Join(errs, "; "))
}

func (c *client) getOne(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	authorize(req) // members with RAMD_API_AUTH_READS protect reads too
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, nil
}

// listOnce fetches /cluster and writes it to w as a table or as indented JSON.
func listOnce(ctx context.Context, c *client, output string, w io.Writer) error {
	body, err := c.get(ctx, "/cluster")
	if err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(w, body)
	}
	var cl cluster
	if err := json.Unmarshal(body, &cl); err != nil {
		return fmt.Errorf("invalid /cluster answer: %w", err)
	}
	return renderTable(w, cl)
}

// renderTable writes the members sorted by name, as `patronictl list` shows them.
func renderTable(w io.Writer, cl cluster) error {
	members := append([]member(nil), cl.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	fmt.Fprintf(w, "Cluster: %s\n", cl.Scope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Member\tHost\tRole\tState\tTL\tLag in MB")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			dash(m.Name), hostPort(m), dash(roleTitle(m.Role)), dash(m.State), timeline(m.Timeline), lagMB(m.Lag))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cl.Pause {
		fmt.Fprintln(w, "Maintenance mode: on")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hostPort(m member) string {
	if m.Host == "" {
		return "-"
	}
	if m.Port == 0 {
		return m.Host
	}
	return m.Host + ":" + strconv.Itoa(m.Port)
}

// roleTitle turns "sync_standby" into "Sync Standby".
func roleTitle(role string) string {
	words := strings.Split(role, "_")
	for i, wd := range words {
		if wd != "" {
			words[i] = strings.ToUpper(wd[:1]) + wd[1:]
		}
	}
	return strings.Join(words, " ")
}

func timeline(tl int) string {
	if tl == 0 {
		return "-"
	}
	return strconv.Itoa(tl)
}

// lagMB is the lag in bytes in whole MB, rounded half to even as patronictl's round() does,
// or "-" when the member reports none (the leader) or "unknown".
func lagMB(raw json.RawMessage) string {
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return "-"
	}
	return strconv.FormatFloat(math.RoundToEven(float64(n)/(1<<20)), 'f', 0, 64)
}
