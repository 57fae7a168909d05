package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

func TestPlanRoll(t *testing.T) {
	m := func(name string, current, ready bool) RollMember {
		return RollMember{Name: name, Current: current, Ready: ready}
	}
	term := func(r RollMember) RollMember { r.Terminating = true; return r }
	tests := []struct {
		name      string
		members   []RollMember
		replicas  int
		primary   string
		pending   bool
		step      RollStep
		target    string
		candidate string
		reason    string // a part of the reason
		settled   bool
	}{
		{name: "all current", members: []RollMember{m("pg-0", true, true), m("pg-1", true, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-0", step: RollDone, settled: true},
		{name: "all current, one not ready: nothing to roll, not settled", members: []RollMember{m("pg-0", true, true), m("pg-1", true, false), m("pg-2", true, true)},
			replicas: 3, primary: "pg-0", step: RollDone, reason: "pg-1 to be ready"},
		{name: "all current, one missing: not settled", members: []RollMember{m("pg-0", true, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-2", step: RollDone, reason: "2 of 3"},
		{name: "highest replica first", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), m("pg-2", false, true)},
			replicas: 3, primary: "pg-0", step: RollDeleteReplica, target: "pg-2"},
		{name: "the primary's ordinal does not matter", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), m("pg-2", false, true)},
			replicas: 3, primary: "pg-2", step: RollDeleteReplica, target: "pg-1"},
		{name: "ordinals compare as numbers", members: []RollMember{m("pg-9", false, true), m("pg-10", false, true), m("pg-0", false, true)},
			replicas: 3, primary: "pg-0", step: RollDeleteReplica, target: "pg-10"},
		{name: "a pod terminating", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), term(m("pg-2", false, true))},
			replicas: 3, primary: "pg-0", step: RollWait, reason: "pg-2 to terminate"},
		{name: "a pod missing", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true)},
			replicas: 3, primary: "pg-0", step: RollWait, reason: "2 of 3"},
		{name: "the replacement not ready yet", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), m("pg-2", true, false)},
			replicas: 3, primary: "pg-0", step: RollWait, reason: "updated pod pg-2 to be ready"},
		{name: "next replica once the replacement is ready", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-0", step: RollDeleteReplica, target: "pg-1"},
		{name: "an unready out-of-date replica goes first", members: []RollMember{m("pg-0", false, true), m("pg-1", false, false), m("pg-2", false, true)},
			replicas: 3, primary: "pg-0", step: RollDeleteReplica, target: "pg-1", reason: "not ready"},
		{name: "a ready replica waits for an unready primary", members: []RollMember{m("pg-0", false, false), m("pg-1", false, true), m("pg-2", false, true)},
			replicas: 3, primary: "pg-0", step: RollWait, reason: "pg-0 to be ready"},
		{name: "primary last: switchover to an updated replica", members: []RollMember{m("pg-0", false, true), m("pg-1", true, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-0", step: RollSwitchover, target: "pg-0", candidate: "pg-2"},
		{name: "switchover under way", members: []RollMember{m("pg-0", false, true), m("pg-1", true, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-0", pending: true, step: RollWait, reason: "switchover away from pg-0"},
		{name: "old primary, now a replica, goes", members: []RollMember{m("pg-0", false, true), m("pg-1", true, true), m("pg-2", true, true)},
			replicas: 3, primary: "pg-2", step: RollDeleteReplica, target: "pg-0"},
		{name: "no primary known", members: []RollMember{m("pg-0", false, true), m("pg-1", false, true), m("pg-2", false, true)},
			replicas: 3, primary: "", step: RollWait, reason: "primary"},
		{name: "a single member is replaced", members: []RollMember{m("pg-0", false, true)},
			replicas: 1, primary: "pg-0", step: RollDeletePrimary, target: "pg-0"},
		{name: "switchover needs every replica ready", members: []RollMember{m("pg-0", false, true), m("pg-1", false, false)},
			replicas: 2, primary: "pg-0", step: RollDeleteReplica, target: "pg-1"},
		{name: "scale-down leftovers above replicas are members too", members: []RollMember{m("pg-0", true, true), m("pg-1", true, true), m("pg-2", false, true)},
			replicas: 2, primary: "pg-0", step: RollDeleteReplica, target: "pg-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.members)
			got := PlanRoll(tc.members, tc.replicas, tc.primary, tc.pending)
			if got.Step != tc.step || got.Target != tc.target || got.Candidate != tc.candidate {
				t.Errorf("PlanRoll = %s %q candidate %q (%s); want %s %q candidate %q",
					got.Step, got.Target, got.Candidate, got.Reason, tc.step, tc.target, tc.candidate)
			}
			if got.Settled != tc.settled {
				t.Errorf("settled %v, want %v", got.Settled, tc.settled)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", got.Reason, tc.reason)
			}
			if !slices.Equal(in, tc.members) {
				t.Errorf("PlanRoll changed its input")
			}
		})
	}
}

func TestPendingSwitchovers(t *testing.T) {
	var p pendingSwitchovers
	key := types.NamespacedName{Namespace: "db", Name: "pg"}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if p.pending(key, "pg-0", t0) {
		t.Fatal("pending before any request")
	}
	p.record(key, "pg-0", t0)
	if !p.pending(key, "pg-0", t0.Add(10*time.Second)) {
		t.Error("not pending 10s after the request")
	}
	if p.pending(key, "pg-2", t0.Add(11*time.Second)) {
		t.Error("still pending after the primary changed")
	}
	p.record(key, "pg-0", t0)
	if p.pending(key, "pg-0", t0.Add(switchoverWait+time.Second)) {
		t.Error("still pending after switchoverWait")
	}
}

// switchoverStandIn plays ramd's switchover for the rolling update: it records the request
// and makes the candidate the leader in the API stand-in's status.
type switchoverStandIn struct {
	mu       sync.Mutex
	requests [][2]string
	onCall   func(leader, candidate string)
}

var rollingStandIn = &switchoverStandIn{}

func (s *switchoverStandIn) RollingSwitchover(_ context.Context, _ []corev1.Pod, user, password, leader, candidate string) error {
	if user != apiUser || password == "" {
		return fmt.Errorf("switchover without credentials")
	}
	s.mu.Lock()
	s.requests = append(s.requests, [2]string{leader, candidate})
	f := s.onCall
	s.mu.Unlock()
	if f != nil {
		f(leader, candidate)
	}
	return nil
}

func (s *switchoverStandIn) calls() [][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// memberPod creates a member pod as the StatefulSet controller and the kubelet would: made
// from the template of hash, with the loopback address the API stand-in answers on, ready
// or not.
func memberPod(t *testing.T, ctx context.Context, c *ramdv1.PostgreSQLCluster, name, hash string, ready bool) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: name, Labels: commonLabels(c),
			Annotations: map[string]string{AnnotationTemplateHash: hash}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ramd", Image: "ramd:test"}}},
	}
	if err := k8sClient.Create(ctx, p); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	setReady(t, ctx, p, ready)
}

func setReady(t *testing.T, ctx context.Context, p *corev1.Pod, ready bool) {
	t.Helper()
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st, LastTransitionTime: metav1.Now()}}}
	if err := k8sClient.Status().Update(ctx, p); err != nil {
		t.Fatalf("setting the status of pod %s: %v", p.Name, err)
	}
}

func statusWithLeader(leader string, names ...string) *ClusterStatus {
	st := &ClusterStatus{Leader: leader, Timeline: 1}
	for _, n := range names {
		role, state := "replica", "streaming"
		if n == leader {
			role, state = "leader", "running"
		}
		st.Members = append(st.Members, ClusterMember{Name: n, Role: role, State: state, Timeline: 1, Lag: []byte("0")})
	}
	return st
}

func rollingCondition(ctx context.Context, key types.NamespacedName) (*metav1.Condition, error) {
	var cur ramdv1.PostgreSQLCluster
	if err := k8sClient.Get(ctx, key, &cur); err != nil {
		return nil, err
	}
	cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionRollingUpdate)
	if cond == nil {
		return nil, fmt.Errorf("no RollingUpdate condition")
	}
	return cond, nil
}

// TestRollingUpdate: a new image rolls the members through pod deletions, replicas one at
// a time (each back ready before the next), then a switchover to an updated replica, then
// the old primary. The test plays the StatefulSet controller and the kubelet: it makes a
// deleted pod again from the new template, first not ready, then ready.
func TestRollingUpdate(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "rolling")
	c := minimal(ns, "pg")
	c.Spec.Consul.Address = "127.0.0.1:1"
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(c)
	var sts appsv1.StatefulSet
	waitFor(t, 30*time.Second, "StatefulSet", func(ctx context.Context) error { return k8sClient.Get(ctx, key, &sts) })
	h1 := sts.Annotations[AnnotationTemplateHash]
	if h1 == "" || sts.Spec.Template.Annotations[AnnotationTemplateHash] != h1 {
		t.Fatalf("template hash %q on the StatefulSet, %q on its pod template", h1, sts.Spec.Template.Annotations[AnnotationTemplateHash])
	}
	names := []string{"pg-0", "pg-1", "pg-2"}
	for _, n := range names {
		memberPod(t, ctx, c, n, h1, true)
	}
	var leaderMu sync.Mutex
	leader := "pg-0"
	fakeRamd.set(statusWithLeader(leader, names...), "")
	t.Cleanup(func() { fakeRamd.set(nil, "") })
	rollingStandIn.mu.Lock()
	rollingStandIn.requests = nil
	rollingStandIn.onCall = func(_, candidate string) {
		leaderMu.Lock()
		leader = candidate
		leaderMu.Unlock()
		fakeRamd.set(statusWithLeader(candidate, names...), "")
	}
	rollingStandIn.mu.Unlock()
	t.Cleanup(func() { rollingStandIn.mu.Lock(); rollingStandIn.onCall = nil; rollingStandIn.mu.Unlock() })

	waitRollingComplete(t, key, "RollingUpdate=False Complete")

	// A new image: a new template.
	updateSpec(t, ctx, key, func(cur *ramdv1.PostgreSQLCluster) {
		cur.Spec.Ramd.Image = "ramd:2"
	})
	var h2 string
	waitFor(t, 20*time.Second, "StatefulSet at the new template", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key, &sts); err != nil {
			return err
		}
		if h2 = sts.Annotations[AnnotationTemplateHash]; h2 == h1 {
			return fmt.Errorf("template hash still %s", h1)
		}
		return nil
	})

	// Play the StatefulSet controller: wait for a deletion, check it is the only missing
	// pod, hold the replacement unready for a few resyncs (nothing else may be deleted
	// meanwhile), then make it ready.
	var order []string
	var switchedBefore []int // len(order) when each switchover was asked for
	seenCalls := 0
	t0 := time.Now()
	for len(order) < len(names) {
		var gone string
		waitFor(t, 30*time.Second, fmt.Sprintf("deletion %d of %d", len(order)+1, len(names)), func(ctx context.Context) error {
			for calls := rollingStandIn.calls(); seenCalls < len(calls); seenCalls++ {
				switchedBefore = append(switchedBefore, len(order))
			}
			var pods corev1.PodList
			if err := k8sClient.List(ctx, &pods, client.InNamespace(ns)); err != nil {
				return err
			}
			var missing []string
			for _, n := range names {
				if !slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return p.Name == n }) {
					missing = append(missing, n)
				}
			}
			switch len(missing) {
			case 0:
				return fmt.Errorf("no pod deleted yet")
			case 1:
				gone = missing[0]
				return nil
			}
			t.Fatalf("pods %v deleted at once; the rolling update must take one at a time", missing)
			return nil
		})
		order = append(order, gone)
		cond, err := rollingCondition(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("deleted %s after %s; condition %s: %s", gone, time.Since(t0).Round(time.Millisecond), cond.Reason, cond.Message)
		if cond.Status != metav1.ConditionTrue {
			t.Errorf("RollingUpdate %s while pods are replaced", cond.Status)
		}
		memberPod(t, ctx, c, gone, h2, false)
		// Three resyncs with the replacement unready: the update waits.
		time.Sleep(1 * time.Second)
		var pods corev1.PodList
		if err := k8sClient.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != len(names) {
			t.Fatalf("%d pods while %s was not ready: another was deleted meanwhile", len(pods.Items), gone)
		}
		cond, err = rollingCondition(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if cond.Reason != "Waiting" || !strings.Contains(cond.Message, gone) {
			t.Errorf("while %s is not ready: RollingUpdate %s %q, want Waiting naming it", gone, cond.Reason, cond.Message)
		}
		var p corev1.Pod
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: gone}, &p); err != nil {
			t.Fatal(err)
		}
		setReady(t, ctx, &p, true)
	}
	t.Logf("rolled %v in %s", order, time.Since(t0).Round(time.Millisecond))

	if !slices.Equal(order, []string{"pg-2", "pg-1", "pg-0"}) {
		t.Errorf("deletion order %v, want pg-2, pg-1, then the primary pg-0", order)
	}
	calls := rollingStandIn.calls()
	if len(calls) != 1 || calls[0] != [2]string{"pg-0", "pg-2"} {
		t.Errorf("switchovers %v, want one from pg-0 to the updated replica pg-2", calls)
	}
	if len(switchedBefore) != 1 || switchedBefore[0] != 2 {
		t.Errorf("switchover asked for after %v deletions, want after the 2 replicas and before the primary", switchedBefore)
	}
	leaderMu.Lock()
	if leader != "pg-2" {
		t.Errorf("leader %s after the update", leader)
	}
	leaderMu.Unlock()
	waitRollingComplete(t, key, "RollingUpdate=False Complete after the update")
}

// TestHTTPRollingSwitchover: the request ramd's API gets (POST /api/v1/switchover, JSON
// leader and candidate, basic auth) and a refusal passed on with ramd's answer.
func TestHTTPRollingSwitchover(t *testing.T) {
	var mu sync.Mutex
	var got map[string]string
	refuse := false
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/switchover", func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if refuse {
			http.Error(w, `{"error":"candidate pg-2 is not healthy"}`, http.StatusPreconditionFailed)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"job_id":"j1","job_url":"/api/v1/jobs/j1"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	h := &HTTPRamdClient{Port: port, Timeout: 2 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "pg-0"}, Status: corev1.PodStatus{PodIP: "127.0.0.1"}}}

	if err := h.RollingSwitchover(ctx, nil, "admin", "pw", "pg-0", "pg-2"); !errors.Is(err, ErrNoMemberAddress) {
		t.Errorf("no pods: %v, want ErrNoMemberAddress", err)
	}
	if err := h.RollingSwitchover(ctx, pods, "admin", "pw", "pg-0", "pg-2"); err != nil {
		t.Fatalf("switchover: %v", err)
	}
	mu.Lock()
	if got["leader"] != "pg-0" || got["candidate"] != "pg-2" || len(got) != 2 {
		t.Errorf("request body %v, want leader pg-0 and candidate pg-2", got)
	}
	refuse = true
	mu.Unlock()
	err := h.RollingSwitchover(ctx, pods, "admin", "pw", "pg-0", "pg-2")
	if err == nil || !strings.Contains(err.Error(), "412") || !strings.Contains(err.Error(), "not healthy") {
		t.Errorf("refused switchover: %v, want the status and ramd's answer", err)
	}
	if err := h.RollingSwitchover(ctx, pods, "admin", "wrong", "pg-0", "pg-2"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong password: %v, want a 401", err)
	}
}

// waitRollingComplete waits until the resource at key reports RollingUpdate False Complete.
func waitRollingComplete(t *testing.T, key client.ObjectKey, what string) {
	t.Helper()
	waitFor(t, 20*time.Second, what, func(ctx context.Context) error {
		cond, err := rollingCondition(ctx, key)
		if err != nil {
			return err
		}
		if cond.Status != metav1.ConditionFalse || cond.Reason != "Complete" {
			return fmt.Errorf("RollingUpdate %+v", cond)
		}
		return nil
	})
}
