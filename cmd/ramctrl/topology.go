package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ramd-project/ramd/api/client"
)

// topoNode is one member in the tree, with the members replicating from it.
type topoNode struct {
	Name     string      `json:"name"`
	Role     string      `json:"role"`
	State    string      `json:"state"`
	Host     string      `json:"host,omitempty"`
	Port     int         `json:"port,omitempty"`
	Timeline int         `json:"timeline,omitempty"`
	Lag      *client.Lag `json:"lag,omitempty"`
	Replicas []*topoNode `json:"replicas,omitempty"`
}

// topology is the JSON document of ramctrl topology --output json.
type topology struct {
	Scope   string      `json:"scope"`
	Pause   bool        `json:"pause,omitempty"`
	Members []*topoNode `json:"members"`
}

// runTopology: ramctrl topology [--watch] [--output table|json|yaml|tsv].
func runTopology(ctx context.Context, args []string, envAPI string, stdout, stderr io.Writer) int {
	o := newOptions("topology", stderr, "table")
	stdout = o.bind(stdout)
	watch := o.fs.Bool("watch", false, "redraw every second until interrupted")
	o.fs.BoolVar(watch, "W", false, "short for --watch")
	c, code, ok := o.connect(ctx, args, envAPI)
	if !ok {
		return code
	}
	return watchOrOnce(ctx, *watch, stdout, stderr, func() error {
		cl, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		t := topology{Scope: cl.Scope, Pause: cl.Pause, Members: buildTopology(cl.Members)}
		if o.json() {
			return writeJSON(stdout, t)
		}
		return renderTopology(stdout, t)
	})
}

// isLeaderRole reports the roles at the top of the tree: leader and standby_leader.
func isLeaderRole(role string) bool { return strings.HasSuffix(role, "leader") }

// buildTopology arranges the members as patronictl topology does: the leader first, each
// replica under the member its replicatefrom tag names, else under the leader. Members a
// cycle of replicatefrom tags keeps from the leader are placed under it too, so none is lost.
// Siblings are sorted by name.
func buildTopology(members []client.Member) []*topoNode {
	sorted := append([]client.Member(nil), members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	nodes := make(map[string]*topoNode, len(sorted))
	leader := ""
	for _, m := range sorted {
		nodes[m.Name] = &topoNode{Name: m.Name, Role: m.Role, State: m.State, Host: m.Host, Port: m.Port, Timeline: m.Timeline, Lag: m.Lag}
		if leader == "" && isLeaderRole(m.Role) {
			leader = m.Name
		}
	}
	// parent is the upstream a replica names, or the leader; "" puts the member at the top.
	parent := func(m client.Member) string {
		if isLeaderRole(m.Role) {
			return ""
		}
		if up, _ := m.Tags["replicatefrom"].(string); up != "" && up != m.Name && nodes[up] != nil {
			return up
		}
		return leader
	}
	roots := []*topoNode{}
	placed := make(map[string]bool, len(sorted))
	var place func(n *topoNode)
	place = func(n *topoNode) {
		placed[n.Name] = true
		for _, m := range sorted {
			if !placed[m.Name] && parent(m) == n.Name {
				child := nodes[m.Name]
				n.Replicas = append(n.Replicas, child)
				place(child)
			}
		}
	}
	for _, m := range sorted {
		if parent(m) == "" {
			roots = append(roots, nodes[m.Name])
			place(nodes[m.Name])
		}
	}
	for _, m := range sorted {
		if placed[m.Name] {
			continue
		}
		n := nodes[m.Name]
		if l := nodes[leader]; l != nil {
			l.Replicas = append(l.Replicas, n)
		} else {
			roots = append(roots, n)
		}
		place(n)
	}
	return roots
}

// renderTopology writes the tree as `patronictl topology` does: the list's columns, with
// each replica indented under its upstream and marked "+ ".
func renderTopology(w io.Writer, t topology) error {
	fmt.Fprintf(w, "Cluster: %s\n", t.Scope)
	tw := newTable(w, 0, 0, 2)
	fmt.Fprintln(tw, "Member\tHost\tRole\tState\tTL\tLag in MB")
	var walk func(nodes []*topoNode, depth int)
	walk = func(nodes []*topoNode, depth int) {
		for _, n := range nodes {
			name := n.Name
			if depth > 0 {
				name = strings.Repeat("  ", depth-1) + "+ " + name
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
				name, hostPort(n.Host, n.Port), dash(roleTitle(n.Role)), dash(n.State), timeline(n.Timeline), lagMB(n.Lag))
			walk(n.Replicas, depth+1)
		}
	}
	walk(t.Members, 0)
	if err := tw.Flush(); err != nil {
		return err
	}
	if t.Pause {
		fmt.Fprintln(w, "Maintenance mode: on")
	}
	return nil
}
