package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

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

// listOnce fetches /cluster and writes it to w as a table or as a document. When the
// member that answered is not the leader, the replicas' lag in seconds (which only the
// leader measures) is read from the leader.
func listOnce(ctx context.Context, c *client.Client, output string, extended bool, w io.Writer) error {
	cl, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	if l, ok := needLeaderView(cl); ok {
		if lv, err := c.At(l.BaseURL()).Cluster(ctx); err == nil {
			cl = lv
		}
	}
	if output == formatJSON || output == formatYAML {
		return writeJSON(w, cl)
	}
	if err := renderTable(w, cl, extended); err != nil {
		return err
	}
	if !tsv(w) {
		if line := lastBackup(ctx, c, cl, time.Now()); line != "" {
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

// lastBackup is list's line about backups, as the leader knows them (its /api/v1/cluster):
// the age of the newest good backup, or that none exists yet; "" when no backup tool is
// configured or the leader does not answer.
func lastBackup(ctx context.Context, c *client.Client, cl client.Cluster, now time.Time) string {
	var leader client.Member
	for _, m := range cl.Members {
		if m.IsLeader() {
			leader = m
		}
	}
	if leader.APIURL == "" {
		return ""
	}
	st, err := c.At(leader.BaseURL()).ClusterStatus(ctx)
	if err != nil || st.Node.Backup == nil || st.Node.Backup.Tool == "" {
		return ""
	}
	b := st.Node.Backup
	if b.LastSuccess.IsZero() {
		return fmt.Sprintf("Last backup: none yet (%s)", b.Tool)
	}
	age := now.Sub(b.LastSuccess).Round(time.Minute)
	if age < time.Minute {
		age = now.Sub(b.LastSuccess).Round(time.Second)
	}
	return fmt.Sprintf("Last backup: %s ago, %s (%s)", age, b.LastSuccess.UTC().Format(time.RFC3339), b.Tool)
}

// needLeaderView reports whether cl lacks the leader's measure of the replicas' lag (the
// answer came from another member) and names the leader to ask.
func needLeaderView(cl client.Cluster) (client.Member, bool) {
	var leader client.Member
	streaming := false
	for _, m := range cl.Members {
		switch {
		case m.IsLeader():
			leader = m
		case m.LagSeconds != nil:
			return client.Member{}, false
		case m.ReplicationState == "streaming":
			streaming = true
		}
	}
	return leader, streaming && leader.APIURL != ""
}

// renderTable writes the members sorted by name, as `patronictl list` shows them, with the
// replay lag in seconds beside the lag in MB. As patronictl does, the columns pending restart
// and scheduled restart appear when a member has one, or always with extended (-e), which
// adds the tags too. Below the table come maintenance mode and a scheduled switchover; tsv
// prints the table alone.
func renderTable(w io.Writer, cl client.Cluster, extended bool) error {
	members := append([]client.Member(nil), cl.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	pending, scheduled := extended, extended
	for _, m := range members {
		pending = pending || m.PendingRestart
		scheduled = scheduled || m.ScheduledRestart != nil
	}
	plain := tsv(w)
	if !plain {
		fmt.Fprintf(w, "Cluster: %s\n", cl.Scope)
	}
	tw := newTable(w, 0, 0, 2)
	header := "Member\tHost\tRole\tState\tTL\tLag in MB\tLag in s"
	if pending {
		header += "\tPending restart"
	}
	if scheduled {
		header += "\tScheduled restart"
	}
	if extended {
		header += "\tTags"
	}
	fmt.Fprintln(tw, header)
	for _, m := range members {
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s",
			dash(m.Name), hostPort(m.Host, m.Port), dash(roleTitle(m.Role)), dash(m.State), timeline(m.Timeline), lagMB(m.Lag), lagSeconds(m.LagSeconds))
		if pending {
			row += "\t" + star(m.PendingRestart)
		}
		if scheduled {
			row += "\t" + scheduledRestart(m.ScheduledRestart)
		}
		if extended {
			row += "\t" + tagList(m.Tags)
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if plain {
		return nil
	}
	if cl.Pause {
		fmt.Fprintln(w, "Maintenance mode: on")
	}
	if sw := cl.ScheduledSwitchover; sw != nil {
		fmt.Fprintf(w, "Switchover scheduled at: %s\n", sw.At)
		fmt.Fprintf(w, "                   from: %s\n", dash(sw.From))
		fmt.Fprintf(w, "                     to: %s\n", firstNonEmpty(sw.To, "the best replica"))
		if sw.JobID != "" {
			fmt.Fprintf(w, "                    job: %s\n", sw.JobID)
		}
	}
	return nil
}

// lagSeconds is the replay lag the leader measured, to a tenth of a second, or "-".
func lagSeconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return strconv.FormatFloat(*s, 'f', 1, 64)
}

// star is patronictl's "*" for a pending restart.
func star(b bool) string {
	if b {
		return "*"
	}
	return ""
}

// scheduledRestart is the time of a scheduled restart, "" when none.
func scheduledRestart(r *client.MemberRestart) string {
	if r == nil {
		return ""
	}
	return r.Schedule
}

// tagList prints tags as sorted key: value pairs, values as JSON.
func tagList(tags map[string]any) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		b, _ := json.Marshal(tags[k])
		parts[i] = k + ": " + string(b)
	}
	return strings.Join(parts, ", ")
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
