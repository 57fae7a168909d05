package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ramd-project/ramd/api/client"
)

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

// listOnce fetches /cluster and writes it to w as a table or as indented JSON.
func listOnce(ctx context.Context, c *client.Client, output string, w io.Writer) error {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	if output == "json" {
		return writeJSON(w, cl)
	}
	return renderTable(w, cl)
}

// renderTable writes the members sorted by name, as `patronictl list` shows them.
func renderTable(w io.Writer, cl client.Cluster) error {
	members := append([]client.Member(nil), cl.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	fmt.Fprintf(w, "Cluster: %s\n", cl.Scope)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Member\tHost\tRole\tState\tTL\tLag in MB")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
			dash(m.Name), hostPort(m.Host, m.Port), dash(roleTitle(m.Role)), dash(m.State), timeline(m.Timeline), lagMB(m.Lag))
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

func hostPort(host string, port int) string {
	if host == "" {
		return "-"
	}
	if port == 0 {
		return host
	}
	return host + ":" + strconv.Itoa(port)
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
func lagMB(l *client.Lag) string {
	if l == nil || l.Unknown {
		return "-"
	}
	return strconv.FormatFloat(math.RoundToEven(float64(l.Bytes)/(1<<20)), 'f', 0, 64)
}
