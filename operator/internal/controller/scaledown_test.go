package controller

import (
	"strings"
	"testing"
)

func TestOrdinal(t *testing.T) {
	cases := map[string]int{"pg-0": 0, "pg-12": 12, "pg-main-3": -1, "pg-": -1, "pg-01": -1, "pg-x": -1, "other-1": -1, "pg--1": -1}
	for name, want := range cases {
		if got := memberOrdinal("pg", name); got != want {
			t.Errorf("memberOrdinal(pg, %s) = %d, want %d", name, got, want)
		}
	}
	if got := memberOrdinal("pg-main", "pg-main-3"); got != 3 {
		t.Errorf("memberOrdinal(pg-main, pg-main-3) = %d", got)
	}
}

func TestPlanScaleDown(t *testing.T) {
	m := func(name, state, lag string) ClusterMember {
		return ClusterMember{Name: name, State: state, Lag: []byte(lag)}
	}
	five := func(leader string) *ClusterStatus {
		return &ClusterStatus{Leader: leader, Members: []ClusterMember{
			m("pg-0", "streaming", "4096"), m("pg-1", "streaming", "0"), m("pg-2", "running", "0"),
			m("pg-3", "streaming", "0"), m("pg-4", "streaming", "0")}}
	}
	cases := []struct {
		name             string
		current, desired int32
		st               *ClusterStatus
		want             scaleDownStep
		waiting          string // part of Waiting
	}{
		{"scale up", 3, 5, nil, scaleDownStep{Replicas: 5}, ""},
		{"unchanged", 3, 3, nil, scaleDownStep{Replicas: 3}, ""},
		{"primary stays", 5, 3, five("pg-2"), scaleDownStep{Replicas: 3}, ""},
		{"primary on the first ordinal", 5, 1, five("pg-0"), scaleDownStep{Replicas: 1}, ""},
		{"primary goes: least lag among those that stay", 5, 3, five("pg-4"), scaleDownStep{Replicas: 5, SwitchTo: "pg-1"}, "switching over to pg-1"},
		{"primary at the boundary goes", 3, 2, &ClusterStatus{Leader: "pg-2", Members: []ClusterMember{
			m("pg-0", "streaming", "0"), m("pg-1", "streaming", "0"), m("pg-2", "running", "0")}},
			scaleDownStep{Replicas: 3, SwitchTo: "pg-0"}, "switching over to pg-0"},
		{"unknown lag comes last", 3, 2, &ClusterStatus{Leader: "pg-2", Members: []ClusterMember{
			m("pg-0", "streaming", `"unknown"`), m("pg-1", "streaming", "100"), m("pg-2", "running", "0")}},
			scaleDownStep{Replicas: 3, SwitchTo: "pg-1"}, "pg-1"},
		{"streaming before running", 3, 2, &ClusterStatus{Leader: "pg-2", Members: []ClusterMember{
			m("pg-0", "running", "0"), m("pg-1", "streaming", "8192"), m("pg-2", "running", "0")}},
			scaleDownStep{Replicas: 3, SwitchTo: "pg-1"}, "pg-1"},
		{"only a running one", 3, 2, &ClusterStatus{Leader: "pg-2", Members: []ClusterMember{
			m("pg-0", "stopped", "0"), m("pg-1", "running", "0"), m("pg-2", "running", "0")}},
			scaleDownStep{Replicas: 3, SwitchTo: "pg-1"}, "pg-1"},
		{"no member that stays runs", 3, 1, &ClusterStatus{Leader: "pg-2", Members: []ClusterMember{
			m("pg-0", "stopped", "0"), m("pg-1", "streaming", "0"), m("pg-2", "running", "0")}},
			scaleDownStep{Replicas: 3}, "no member that stays is running"},
		{"status unknown", 3, 2, nil, scaleDownStep{Replicas: 3}, "could not be read"},
		{"no leader", 3, 2, &ClusterStatus{}, scaleDownStep{Replicas: 3}, "no member holds the leader lock"},
		{"leader of another name", 3, 2, &ClusterStatus{Leader: "elsewhere"}, scaleDownStep{Replicas: 2}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planScaleDown("pg", tc.current, tc.desired, tc.st)
			if got.Replicas != tc.want.Replicas || got.SwitchTo != tc.want.SwitchTo {
				t.Errorf("got %+v, want replicas %d, switch to %q", got, tc.want.Replicas, tc.want.SwitchTo)
			}
			if (tc.waiting == "") != (got.Waiting == "") || !strings.Contains(got.Waiting, tc.waiting) {
				t.Errorf("waiting %q, want it to hold %q", got.Waiting, tc.waiting)
			}
		})
	}
}
