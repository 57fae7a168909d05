package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// createPod plays the StatefulSet controller and the kubelet (neither runs in envtest): a
// pod of the cluster with the loopback address where the ramd stand-in listens.
func createPod(t *testing.T, ctx context.Context, ns, cluster, name string) {
	t.Helper()
	// The ServiceAccount admission plugin wants the namespace's default account, which the
	// controller manager (absent here) would create.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	if err := k8sClient.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the default ServiceAccount: %v", err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{LabelCluster: cluster}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "ramd", Image: "ramd:test"}}},
	}
	if err := k8sClient.Create(ctx, p); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1", PodIPs: []corev1.PodIP{{IP: "127.0.0.1"}}}
	if err := k8sClient.Status().Update(ctx, p); err != nil {
		t.Fatalf("setting the address of pod %s: %v", name, err)
	}
}

func roles(ctx context.Context, ns string, names ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		var p corev1.Pod
		if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: n}, &p); err != nil {
			return nil, err
		}
		out[n] = p.Labels[LabelRole]
	}
	return out, nil
}

func TestStatusAndRoleLabelsFollowRamd(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "roles")
	lag := func(n string) []byte { return []byte(n) }
	st := &ClusterStatus{Leader: "pg-0", Timeline: 1, Members: []ClusterMember{
		{Name: "pg-0", Role: "leader", State: "running", Timeline: 1, Lag: lag("0")},
		{Name: "pg-1", Role: "sync_standby", State: "streaming", Timeline: 1, Lag: lag("4096")},
		{Name: "pg-2", Role: "replica", State: "stopped", Timeline: 1, Lag: lag(`"unknown"`), PendingRestart: true},
	}}
	st.Node.Backup = &struct {
		LastSuccess time.Time `json:"last_success"`
	}{LastSuccess: time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)}
	fakeRamd.set(st, "")
	defer fakeRamd.set(nil, "")

	c := minimal(ns, "pg")
	c.Spec.PostgreSQL.Parameters = map[string]string{"work_mem": "8MB"}
	for _, n := range []string{"pg-0", "pg-1", "pg-2"} {
		createPod(t, ctx, ns, "pg", n)
	}
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "pg"}
	waitFor(t, 20*time.Second, "roles from ramd", func(ctx context.Context) error {
		r, err := roles(ctx, ns, "pg-0", "pg-1", "pg-2")
		if err != nil {
			return err
		}
		if r["pg-0"] != RolePrimary || r["pg-1"] != RoleReplica || r["pg-2"] != "" {
			return fmt.Errorf("roles %v", r)
		}
		return nil
	})
	waitFor(t, 20*time.Second, "status from ramd", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		s := cur.Status
		reach := meta.FindStatusCondition(s.Conditions, ramdv1.ConditionMembersReachable)
		prim := meta.FindStatusCondition(s.Conditions, ramdv1.ConditionPrimaryAvailable)
		conf := meta.FindStatusCondition(s.Conditions, ramdv1.ConditionConfigurationAccepted)
		switch {
		case reach == nil || reach.Status != metav1.ConditionTrue:
			return fmt.Errorf("MembersReachable %+v", reach)
		case prim == nil || prim.Status != metav1.ConditionTrue:
			return fmt.Errorf("PrimaryAvailable %+v", prim)
		case conf == nil || conf.Status != metav1.ConditionTrue || s.ConfigHash == "":
			return fmt.Errorf("ConfigurationAccepted %+v hash %q", conf, s.ConfigHash)
		case s.Primary != "pg-0" || len(s.Members) != 3:
			return fmt.Errorf("primary %q members %+v", s.Primary, s.Members)
		case s.Members[1].LagBytes == nil || *s.Members[1].LagBytes != 4096 || s.Members[2].LagBytes != nil || !s.Members[2].PendingRestart:
			return fmt.Errorf("members %+v", s.Members)
		case s.LastBackupTime == nil || !s.LastBackupTime.Time.Equal(st.Node.Backup.LastSuccess):
			return fmt.Errorf("last backup %v", s.LastBackupTime)
		}
		return nil
	})
	// Patched once (a reconcile racing the status update may send it twice); the hash in
	// the status stops repeats.
	patches, n := fakeRamd.patchCount()
	if n < 1 || n > 2 {
		t.Fatalf("%d configuration patches, want 1: %v", n, patches)
	}
	if p, _ := patches[0]["postgresql"].(map[string]any); p == nil || fmt.Sprint(p["parameters"]) != "map[work_mem:8MB]" {
		t.Errorf("patch %v", patches[0])
	}
	time.Sleep(time.Second) // about three resyncs
	if _, later := fakeRamd.patchCount(); later != n {
		t.Errorf("configuration patched again without a change: %d patches, then %d", n, later)
	}

	// ramd fails over to pg-1: the labels, hence the Services' endpoints, follow.
	after := &ClusterStatus{Leader: "pg-1", Timeline: 2, Members: []ClusterMember{
		{Name: "pg-1", Role: "leader", State: "running", Timeline: 2},
		{Name: "pg-2", Role: "replica", State: "streaming", Timeline: 2},
	}}
	t0 := time.Now()
	fakeRamd.set(after, "")
	waitFor(t, 20*time.Second, "roles after the failover", func(ctx context.Context) error {
		r, err := roles(ctx, ns, "pg-0", "pg-1", "pg-2")
		if err != nil {
			return err
		}
		if r["pg-0"] != "" || r["pg-1"] != RolePrimary || r["pg-2"] != RoleReplica {
			return fmt.Errorf("roles %v", r)
		}
		return nil
	})
	t.Logf("role labels followed ramd's new leader %s after it was reported (resync 300ms)", time.Since(t0).Round(time.Millisecond))

	// A parameter ramd refuses: the condition carries ramd's field-level message.
	fakeRamd.set(after, `{"errors":[{"field":"postgresql.parameters.work_mem","value":"lots","reason":"invalid value"}]}`)
	updateSpec(t, ctx, key, func(cur *ramdv1.PostgreSQLCluster) {
		cur.Spec.PostgreSQL.Parameters["work_mem"] = "lots"
	})
	waitFor(t, 20*time.Second, "refusal in the condition", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionConfigurationAccepted)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "Refused" ||
			!strings.Contains(cond.Message, "postgresql.parameters.work_mem") {
			return fmt.Errorf("ConfigurationAccepted %+v", cond)
		}
		return nil
	})
}
