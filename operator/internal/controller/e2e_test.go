package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// The end-to-end test runs real ramd and PostgreSQL processes for the pods of a
// PostgreSQLCluster. envtest has no kubelet and no StatefulSet controller, so the test plays
// both: it creates each pod the StatefulSet asks for from its template, starts ramd with
// exactly the environment of the pod's container (fieldRefs, Secret and ConfigMap keys and
// mounted files resolved), and writes the pod's address and readiness back. Only what a
// host cannot have is substituted: the pod IP is a loopback address of its own, the
// container ports are free ports, and the volumes are temporary directories. The operator
// is the suite's reconciler, in process.

// e2eTimeout bounds the whole test; each wait inside has its own, shorter bound.
const e2eTimeout = 8 * time.Minute

// e2eMissing skips the test, or fails it under RAMD_TEST_REQUIRE_REAL=1.
func e2eMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("RAMD_TEST_REQUIRE_REAL") == "1" {
		t.Fatalf("RAMD_TEST_REQUIRE_REAL=1 but %s", msg)
	}
	t.Skipf("end-to-end test skipped: %s (RAMD_TEST_REQUIRE_REAL=1 makes this a failure)", msg)
}

// e2eVersion is the newest PostgreSQL major version the CRD accepts whose server binaries
// are installed where the rendered pod looks for them (RAMD_PG_BIN_DIR).
func e2eVersion() string {
	for _, v := range []string{"18", "17", "16", "15"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/postgresql", v, "bin", "postgres")); err == nil {
			return v
		}
	}
	return ""
}

func TestEndToEndFailoverAndSwitchover(t *testing.T) {
	needEnv(t)
	consulBin := os.Getenv("RAMD_CONSUL_BIN")
	if consulBin == "" {
		e2eMissing(t, "RAMD_CONSUL_BIN is not set (export RAMD_CONSUL_BIN=$(scripts/build-consul.sh))")
	}
	version := e2eVersion()
	if version == "" {
		e2eMissing(t, "no PostgreSQL 15 to 18 server binaries under /usr/lib/postgresql/<version>/bin")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	t.Cleanup(cancel)

	ramdBin := buildRamd(t, ctx)
	consulAddr := startPlainConsul(t, ctx, consulBin)

	ns := namespace(t, ctx, "e2e")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	if err := k8sClient.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating the default ServiceAccount: %v", err)
	}
	c := minimal(ns, "pg")
	c.Spec.PostgreSQL.Version = version
	c.Spec.Consul.Address = consulAddr
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatalf("creating the PostgreSQLCluster: %v", err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "pg"}

	var sts appsv1.StatefulSet
	waitFor(t, 30*time.Second, "the StatefulSet", func(ctx context.Context) error {
		return k8sClient.Get(ctx, key, &sts)
	})
	node := newFakeNode(t, ramdBin)
	for i := range int(*sts.Spec.Replicas) {
		node.run(ctx, &sts, i)
	}
	node.startStatusLoop(ctx, &sts)

	// Bootstrap: one member initialises, the others clone; the operator labels them.
	var primary string
	waitFor(t, 3*time.Minute, "a primary and two replicas labelled", func(ctx context.Context) error {
		var err error
		primary, err = labelledRoles(ctx, c, 2)
		return err
	})
	t.Logf("bootstrapped: %s is the primary", primary)
	assertStatusPrimary(t, ctx, key, primary)

	// Failover: SIGKILL the primary's ramd and postmaster.
	victim := node.pod(primary)
	t0 := time.Now()
	victim.kill(t)
	var promoted, labelled, reported time.Duration
	var newPrimary string
	waitFor(t, 60*time.Second, "the leader lock, the -rw selection and status.primary after the failover", func(ctx context.Context) error {
		if promoted == 0 {
			if l, err := consulKey(ctx, consulAddr, "service/"+Scope(c)+"/leader"); err == nil && l != "" && l != primary {
				promoted = time.Since(t0)
			}
		}
		if labelled == 0 {
			if sel, err := rwSelection(ctx, c); err == nil && len(sel) == 1 && sel[0] != primary {
				labelled, newPrimary = time.Since(t0), sel[0]
			}
		}
		if reported == 0 {
			var cur ramdv1.PostgreSQLCluster
			if err := k8sClient.Get(ctx, key, &cur); err == nil && cur.Status.Primary != "" && cur.Status.Primary != primary {
				reported = time.Since(t0)
			}
		}
		if promoted == 0 || labelled == 0 || reported == 0 {
			return fmt.Errorf("after %s: leader lock taken after %s, -rw moved after %s, status.primary after %s (0: not yet)",
				time.Since(t0).Round(time.Millisecond), promoted, labelled, reported)
		}
		return nil
	})
	t.Logf("failover measured: SIGKILL of %s's ramd and postmaster -> leader lock taken by %s after %s, "+
		"the -rw Service's selection on %s after %s, status.primary after %s (operator resync %s)",
		primary, newPrimary, promoted.Round(time.Millisecond), newPrimary, labelled.Round(time.Millisecond),
		reported.Round(time.Millisecond), reconcilerResync)
	assertStatusPrimary(t, ctx, key, newPrimary)

	// The kubelet restarts the killed container: ramd rewinds or re-clones its member, which
	// comes back as a replica of the new primary.
	victim.start(t)
	waitFor(t, 2*time.Minute, "the restarted old primary labelled replica", func(ctx context.Context) error {
		p, err := labelledRoles(ctx, c, 2)
		if err != nil {
			return err
		}
		if p != newPrimary {
			return fmt.Errorf("primary %s, want %s", p, newPrimary)
		}
		return nil
	})

	// Switchover through the resource, to the highest ordinal that is not the primary, so
	// that the scale-down below has to move the primary before its pod goes.
	target := "pg-2"
	if newPrimary == target {
		target = "pg-1"
	}
	// ramd takes a candidate that streams from the primary; a member labelled replica may
	// still be catching up ("running"), and ramd would refuse it (the condition says so).
	waitFor(t, 2*time.Minute, target+" streaming", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		for _, m := range cur.Status.Members {
			if m.Name == target && m.State == "streaming" {
				return nil
			}
		}
		return fmt.Errorf("members %+v", cur.Status.Members)
	})
	t1 := time.Now()
	annotate(t, ctx, key, map[string]string{AnnotationSwitchoverTo: target})
	waitFor(t, 90*time.Second, "the switchover requested by annotation", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		sel, err := rwSelection(ctx, c)
		if err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ConditionSwitchover)
		switch {
		case cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != "Succeeded":
			return fmt.Errorf("switchover condition %+v", cond)
		case cur.Status.Primary != target:
			return fmt.Errorf("status.primary %s, want %s", cur.Status.Primary, target)
		case !slices.Equal(sel, []string{target}):
			return fmt.Errorf("-rw selects %v, want [%s]", sel, target)
		case cur.Annotations[AnnotationSwitchoverTo] != "" || cur.Annotations[AnnotationSwitchoverJob] != "":
			return fmt.Errorf("annotations left: %v", cur.Annotations)
		}
		return nil
	})
	t.Logf("switchover by annotation to %s: -rw selection and status.primary followed after %s",
		target, time.Since(t1).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the SwitchedOver event", func(ctx context.Context) error {
		var evs corev1.EventList
		if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "pg" && e.Reason == "SwitchedOver" && strings.Contains(e.Message, "to "+target) {
				return nil
			}
		}
		return fmt.Errorf("no SwitchedOver event among %d", len(evs.Items))
	})
	waitFor(t, 2*time.Minute, "the old primary and the other member labelled replica after the switchover", func(ctx context.Context) error {
		_, err := labelledRoles(ctx, c, 2)
		return err
	})

	// A target that is not a member is refused with the condition; nothing changes.
	annotate(t, ctx, key, map[string]string{AnnotationSwitchoverTo: "pg-9"})
	waitFor(t, 30*time.Second, "the refusal of a target that is no member", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ConditionSwitchover)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "UnknownTarget" ||
			!strings.Contains(cond.Message, `"pg-9" is not a member`) {
			return fmt.Errorf("switchover condition %+v", cond)
		}
		if _, ok := cur.Annotations[AnnotationSwitchoverTo]; ok {
			return errors.New("the refused request is still annotated")
		}
		return nil
	})
	assertStatusPrimary(t, ctx, key, target)

	// Scale-down that would remove the primary: the operator switches over to a member
	// that stays before it lowers the StatefulSet's replicas.
	desired := int32(memberOrdinal("pg", target))
	var cur ramdv1.PostgreSQLCluster
	if err := k8sClient.Get(ctx, key, &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Replicas = desired
	t2 := time.Now()
	if err := k8sClient.Patch(ctx, &cur, patch); err != nil {
		t.Fatalf("scaling down to %d: %v", desired, err)
	}
	var leaderAtScale string
	waitFor(t, 90*time.Second, "the StatefulSet scaled down", func(ctx context.Context) error {
		var s appsv1.StatefulSet
		if err := k8sClient.Get(ctx, key, &s); err != nil {
			return err
		}
		if *s.Spec.Replicas != desired {
			return fmt.Errorf("the StatefulSet has %d replicas", *s.Spec.Replicas)
		}
		// The holder of the leader lock in Consul, not a member's view of it.
		var err error
		leaderAtScale, err = consulKey(ctx, consulAddr, "service/"+Scope(c)+"/leader")
		return err
	})
	held := time.Since(t2)
	if o := memberOrdinal("pg", leaderAtScale); o < 0 || o >= int(desired) {
		t.Fatalf("the StatefulSet went down to %d replicas %s after the request while the leader lock was held by %q",
			desired, held, leaderAtScale)
	}
	waitFor(t, 30*time.Second, "the ScaleDown condition", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ConditionScaleDown)
		if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != "Applied" {
			return fmt.Errorf("ScaleDown condition %+v", cond)
		}
		sw := meta.FindStatusCondition(cur.Status.Conditions, ConditionSwitchover)
		if sw == nil || sw.Status != metav1.ConditionTrue || sw.Reason != "Succeeded" ||
			!strings.Contains(sw.Message, "from "+target+" to "+leaderAtScale) {
			return fmt.Errorf("Switchover condition %+v", sw)
		}
		return nil
	})
	t.Logf("scale-down 3 -> %d with the primary %s among the pods to go: switched over to %s, StatefulSet lowered after %s",
		desired, target, leaderAtScale, held.Round(time.Millisecond))
	// The StatefulSet controller's part: the pods above the count go (ramd stops cleanly).
	node.scaleDown(ctx, int(desired))
	waitFor(t, 60*time.Second, "the remaining members alone in ramd, the labels and the status", func(ctx context.Context) error {
		p, err := labelledRoles(ctx, c, int(desired)-1)
		if err != nil {
			return err
		}
		if p != leaderAtScale {
			return fmt.Errorf("primary %s, want %s", p, leaderAtScale)
		}
		body, err := httpGet(ctx, fmt.Sprintf("http://%s/api/v1/cluster", net.JoinHostPort(node.pod(p).ip, strconv.Itoa(node.pod(p).apiPort))))
		if err != nil {
			return err
		}
		var st ClusterStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return err
		}
		if names := memberNames(&st); len(names) != int(desired) {
			return fmt.Errorf("ramd still lists %v", names)
		}
		keys, err := consulKeys(ctx, consulAddr, "service/"+Scope(c)+"/members/")
		if err != nil {
			return err
		}
		if len(keys) != int(desired) {
			return fmt.Errorf("member keys in Consul: %v", keys)
		}
		var got ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &got); err != nil {
			return err
		}
		if len(got.Status.Members) != int(desired) || got.Status.Primary != p {
			return fmt.Errorf("status: primary %s, members %+v", got.Status.Primary, got.Status.Members)
		}
		return nil
	})

	// A parameter that needs a restart: ramd takes it into its dynamic configuration and
	// lists every member as waiting; the operator asks ramd for one rolling restart.
	{
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(cur.DeepCopy())
		if cur.Spec.PostgreSQL.Parameters == nil {
			cur.Spec.PostgreSQL.Parameters = map[string]string{}
		}
		cur.Spec.PostgreSQL.Parameters["max_connections"] = "123"
		t3 := time.Now()
		if err := k8sClient.Patch(ctx, &cur, patch); err != nil {
			t.Fatalf("setting max_connections: %v", err)
		}
		waitFor(t, 4*time.Minute, "the rolling restart for max_connections", func(ctx context.Context) error {
			var evs corev1.EventList
			if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
				return err
			}
			restarted := false
			for _, e := range evs.Items {
				restarted = restarted || (e.InvolvedObject.Name == "pg" && e.Reason == "Restarted")
			}
			if !restarted {
				return fmt.Errorf("no Restarted event among %d", len(evs.Items))
			}
			for ord := range int(desired) {
				p := node.pod(fmt.Sprintf("pg-%d", ord))
				body, err := httpGet(ctx, fmt.Sprintf("http://%s/patroni", net.JoinHostPort(p.ip, strconv.Itoa(p.apiPort))))
				if err != nil {
					return err
				}
				var doc struct {
					PendingRestart bool   `json:"pending_restart"`
					State          string `json:"state"`
				}
				if err := json.Unmarshal([]byte(body), &doc); err != nil {
					return err
				}
				if doc.PendingRestart || doc.State != "running" {
					return fmt.Errorf("%s: state %s, pending restart %v", p.name, doc.State, doc.PendingRestart)
				}
			}
			return nil
		})
		t.Logf("max_connections applied by a rolling restart the operator asked for, %s after the spec change",
			time.Since(t3).Round(time.Millisecond))
		waitFor(t, 90*time.Second, "a primary and a replica labelled after the rolling restart", func(ctx context.Context) error {
			_, err := labelledRoles(ctx, c, int(desired)-1)
			return err
		})
	}
}

// reconcilerResync is the suite's resync (startControlPlane), reported with the figures.
const reconcilerResync = 300 * time.Millisecond

func assertStatusPrimary(t *testing.T, ctx context.Context, key types.NamespacedName, want string) {
	t.Helper()
	var cur ramdv1.PostgreSQLCluster
	if err := k8sClient.Get(ctx, key, &cur); err != nil {
		t.Fatal(err)
	}
	if cur.Status.Primary != want {
		t.Errorf("status.primary %q, want %q", cur.Status.Primary, want)
	}
	if cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionPrimaryAvailable); cond == nil || cond.Status != metav1.ConditionTrue {
		t.Errorf("PrimaryAvailable %+v", cond)
	}
}

// labelledRoles checks that exactly one pod is labelled primary and `replicas` pods replica,
// and that the -rw Service selects the primary alone; it returns the primary's name.
func labelledRoles(ctx context.Context, c *ramdv1.PostgreSQLCluster, replicas int) (string, error) {
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return "", err
	}
	var primaries, reps []string
	for _, p := range pods.Items {
		switch p.Labels[LabelRole] {
		case RolePrimary:
			primaries = append(primaries, p.Name)
		case RoleReplica:
			reps = append(reps, p.Name)
		}
	}
	if len(primaries) != 1 || len(reps) != replicas {
		return "", fmt.Errorf("primaries %v, replicas %v", primaries, reps)
	}
	sel, err := rwSelection(ctx, c)
	if err != nil {
		return "", err
	}
	if !slices.Equal(sel, primaries) {
		return "", fmt.Errorf("-rw selects %v, labelled primary %v", sel, primaries)
	}
	return primaries[0], nil
}

// rwSelection is the pods the -rw Service's selector selects (envtest runs no endpoints
// controller: the selection is what the endpoints would follow).
func rwSelection(ctx context.Context, c *ramdv1.PostgreSQLCluster) ([]string, error) {
	var svc corev1.Service
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: primaryName(c)}, &svc); err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := k8sClient.List(ctx, &pods, client.InNamespace(c.Namespace),
		client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(svc.Spec.Selector)}); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods.Items {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out, nil
}

func annotate(t *testing.T, ctx context.Context, key types.NamespacedName, ann map[string]string) {
	t.Helper()
	var cur ramdv1.PostgreSQLCluster
	if err := k8sClient.Get(ctx, key, &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	maps.Copy(cur.Annotations, ann)
	if err := k8sClient.Patch(ctx, &cur, patch); err != nil {
		t.Fatalf("annotating %s: %v", key, err)
	}
}

// buildRamd builds ramd from the root module once into a temporary directory.
func buildRamd(t *testing.T, ctx context.Context) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "ramd")); err != nil {
		e2eMissing(t, "ramd's source is not at %s: %v", root, err)
	}
	bin := filepath.Join(t.TempDir(), "ramd")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/ramd")
	cmd.Dir = root
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ramd: %v\n%s", err, out)
	}
	t.Logf("ramd built in %s", time.Since(t0).Round(100*time.Millisecond))
	return bin
}

// Ports: the scheme of ramd's test/testenv (lock files with the owner's pid in a shared
// folder), so parallel test processes never hand out the same port.
var portDir = filepath.Join(os.TempDir(), "ramd-test-ports")

// freePort reserves a port free on 127.0.0.1 and on host (when not empty).
func freePort(t *testing.T, host string) int {
	t.Helper()
	if err := os.MkdirAll(portDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		p := 20000 + rand.IntN(12000)
		path := filepath.Join(portDir, strconv.Itoa(p))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			b, rerr := os.ReadFile(path)
			pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
			if rerr == nil && perr == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_ = os.Remove(path) // the owner is gone; tried again another time
			}
			continue
		}
		_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
		_ = f.Close()
		ok := true
		for _, h := range []string{"127.0.0.1", host} {
			if h == "" {
				continue
			}
			l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			_ = l.Close()
		}
		if ok {
			t.Cleanup(func() { _ = os.Remove(path) })
			return p
		}
		_ = os.Remove(path)
	}
	t.Fatal("no free port found in 2000 tries")
	return 0
}

// startPlainConsul starts `consul agent -dev` (no ACLs: the pods get no token) on free loopback ports, stopped by pid in
// t.Cleanup, and returns its HTTP address once it has a leader.
func startPlainConsul(t *testing.T, ctx context.Context, bin string) string {
	t.Helper()
	dir := t.TempDir()
	ports := make([]int, 5)
	for i := range ports {
		ports[i] = freePort(t, "")
	}
	cfg := map[string]any{
		"node_name": fmt.Sprintf("ramd-k8s-e2e-%d", os.Getpid()), "datacenter": "dc1",
		"bind_addr": "127.0.0.1", "client_addr": "127.0.0.1", "advertise_addr": "127.0.0.1",
		"disable_update_check": true,
		"ports": map[string]any{"http": ports[0], "dns": ports[1], "serf_lan": ports[2], "serf_wan": ports[3],
			"server": ports[4], "https": -1, "grpc": -1, "grpc_tls": -1},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "consul.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "consul.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "-dev", "-config-file="+cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("starting consul: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	t.Cleanup(func() { stopProcess(t, "consul", cmd.Process.Pid, done, 10*time.Second) })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	waitFor(t, 30*time.Second, "consul's leader", func(ctx context.Context) error {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("consul exited:\n%s", b)
		default:
		}
		body, err := httpGet(ctx, "http://"+addr+"/v1/status/leader")
		if err != nil {
			return err
		}
		if strings.Trim(strings.TrimSpace(body), `"`) == "" {
			return errors.New("no leader yet")
		}
		return nil
	})
	return addr
}

// consulKey reads a key's raw value from Consul's KV store, "" when there is none.
func consulKey(ctx context.Context, addr, key string) (string, error) {
	body, err := httpGet(ctx, "http://"+addr+"/v1/kv/"+key+"?raw")
	if err != nil && strings.Contains(err.Error(), "status 404") {
		return "", nil
	}
	return body, err
}

// consulKeys lists the keys under prefix.
func consulKeys(ctx context.Context, addr, prefix string) ([]string, error) {
	body, err := httpGet(ctx, "http://"+addr+"/v1/kv/"+prefix+"?keys")
	if err != nil {
		if strings.Contains(err.Error(), "status 404") {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	if err := json.Unmarshal([]byte(body), &keys); err != nil {
		return nil, fmt.Errorf("decoding the keys under %s: %w", prefix, err)
	}
	return keys, nil
}

// stopProcess sends SIGTERM to pid and SIGKILL after grace, waiting (bounded) for done.
func stopProcess(t *testing.T, what string, pid int, done <-chan struct{}, grace time.Duration) {
	t.Helper()
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	t.Logf("%s (pid %d) did not stop within %s: SIGKILL", what, pid, grace)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) not reaped 10s after SIGKILL", what, pid)
	}
}

func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return b.String(), fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return b.String(), nil
}

// fakeNode plays the kubelet (and the StatefulSet controller) for the test's pods.
type fakeNode struct {
	t       *testing.T
	ramdBin string
	mu      sync.Mutex
	pods    []*fakePod
}

// fakePod is one pod: its address, ports, directories and ramd process.
type fakePod struct {
	t       *testing.T
	name    string
	ns      string
	ip      string
	apiPort int
	env     []string
	dataDir string // RAMD_DATA_DIR as resolved
	logPath string
	bin     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newFakeNode(t *testing.T, ramdBin string) *fakeNode {
	t.Helper()
	return &fakeNode{t: t, ramdBin: ramdBin}
}

func (n *fakeNode) pod(name string) *fakePod {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.pods {
		if p.name == name {
			return p
		}
	}
	n.t.Fatalf("no pod %s", name)
	return nil
}

// run creates pod <sts>-<ord> from the StatefulSet's template and starts its ramd.
func (n *fakeNode) run(ctx context.Context, sts *appsv1.StatefulSet, ord int) {
	t := n.t
	t.Helper()
	name := fmt.Sprintf("%s-%d", sts.Name, ord)
	ip := fmt.Sprintf("127.0.0.%d", 11+ord)

	// The StatefulSet controller's part: the pod from the template, with the claims of the
	// volume claim templates as volumes.
	tmpl := sts.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: sts.Namespace, Name: name,
			Labels: maps.Clone(tmpl.Labels), Annotations: maps.Clone(tmpl.Annotations)},
		Spec: tmpl.Spec,
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels["statefulset.kubernetes.io/pod-name"] = name
	pod.Spec.Hostname, pod.Spec.Subdomain = name, sts.Spec.ServiceName
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: vct.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vct.Name + "-" + name}}})
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("the pod template has %d containers, the test runs one", len(pod.Spec.Containers))
	}
	// What a host cannot have: the container ports become free ports on the pod's address
	// (the operator reaches the API at the pod's container port named "api").
	ctr := &pod.Spec.Containers[0]
	portMap := map[int32]int{}
	apiPort := 0
	for i := range ctr.Ports {
		p := freePort(t, ip)
		portMap[ctr.Ports[i].ContainerPort] = p
		ctr.Ports[i].ContainerPort = int32(p)
		if ctr.Ports[i].Name == "api" {
			apiPort = p
		}
	}
	if apiPort == 0 {
		t.Fatal("the container declares no port named api")
	}
	if err := k8sClient.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	// The kubelet's part: the address, the volumes, the environment.
	setPodStatus(t, ctx, pod, ip, false)
	mounts := mountVolumes(t, ctx, pod, ctr)
	env := resolveEnv(t, ctx, pod, ctr, portMap, mounts)
	fp := &fakePod{t: t, name: name, ns: pod.Namespace, ip: ip, apiPort: apiPort, env: env, bin: n.ramdBin,
		logPath: filepath.Join(t.TempDir(), name+".log")}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "RAMD_DATA_DIR="); ok {
			fp.dataDir = v
		}
	}
	if fp.dataDir == "" {
		t.Fatal("the container's environment has no RAMD_DATA_DIR")
	}
	n.mu.Lock()
	n.pods = append(n.pods, fp)
	n.mu.Unlock()
	fp.start(t)
	t.Cleanup(func() { fp.stop(t) })
}

// setPodStatus writes the pod's address, phase and Ready condition.
func setPodStatus(t *testing.T, ctx context.Context, pod *corev1.Pod, ip string, ready bool) {
	t.Helper()
	if err := updatePodStatus(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}, ip, ready); err != nil {
		t.Fatalf("writing the status of pod %s: %v", pod.Name, err)
	}
}

func updatePodStatus(ctx context.Context, key types.NamespacedName, ip string, ready bool) error {
	var p corev1.Pod
	if err := k8sClient.Get(ctx, key, &p); err != nil {
		return err
	}
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.HostIP, p.Status.HostIPs = "127.0.0.1", []corev1.HostIP{{IP: "127.0.0.1"}}
	p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if p.Status.StartTime == nil {
		p.Status.StartTime = &now
	}
	set := func(typ corev1.PodConditionType) {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == typ {
				if p.Status.Conditions[i].Status != st {
					p.Status.Conditions[i].Status, p.Status.Conditions[i].LastTransitionTime = st, now
				}
				return
			}
		}
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: typ, Status: st, LastTransitionTime: now})
	}
	set(corev1.PodReady)
	set(corev1.ContainersReady)
	return k8sClient.Status().Update(ctx, &p)
}

// startStatusLoop plays the kubelet's readiness probe (ramd's /readiness) and the
// StatefulSet controller's status until the test ends.
func (n *fakeNode) startStatusLoop(ctx context.Context, sts *appsv1.StatefulSet) {
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			n.t.Error("the kubelet loop did not stop within 10s")
		}
	})
	go func() {
		defer close(done)
		for {
			n.mu.Lock()
			pods := slices.Clone(n.pods)
			n.mu.Unlock()
			ready := int32(0)
			for _, fp := range pods {
				_, err := httpGet(loopCtx, fmt.Sprintf("http://%s/readiness", net.JoinHostPort(fp.ip, strconv.Itoa(fp.apiPort))))
				ok := err == nil
				if ok {
					ready++
				}
				var p corev1.Pod
				key := types.NamespacedName{Namespace: fp.ns, Name: fp.name}
				if err := k8sClient.Get(loopCtx, key, &p); err == nil && podReady(&p) != ok {
					_ = updatePodStatus(loopCtx, key, fp.ip, ok) // a conflict is retried next round
				}
			}
			var cur appsv1.StatefulSet
			if err := k8sClient.Get(loopCtx, client.ObjectKeyFromObject(sts), &cur); err == nil {
				n := int32(len(pods))
				if cur.Status.Replicas != n || cur.Status.ReadyReplicas != ready {
					cur.Status.Replicas, cur.Status.ReadyReplicas, cur.Status.CurrentReplicas = n, ready, n
					cur.Status.ObservedGeneration = cur.Generation
					_ = k8sClient.Status().Update(loopCtx, &cur)
				}
			}
			select {
			case <-loopCtx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
}

// scaleDown plays the StatefulSet controller's scale-down: the pods of ordinal keep and
// above stop (ramd stops PostgreSQL and leaves cleanly) and are deleted.
func (n *fakeNode) scaleDown(ctx context.Context, keep int) {
	t := n.t
	t.Helper()
	n.mu.Lock()
	var gone []*fakePod
	n.pods = slices.DeleteFunc(n.pods, func(p *fakePod) bool {
		if ordinalSuffix(p.name) >= keep {
			gone = append(gone, p)
			return true
		}
		return false
	})
	n.mu.Unlock()
	for _, p := range gone {
		p.stop(t)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.ns, Name: p.name}}
		// No node: the API server removes the pod at once.
		if err := k8sClient.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("deleting pod %s: %v", p.name, err)
		}
	}
}

// ordinalSuffix is the number after the last dash of name, -1 without one.
func ordinalSuffix(name string) int {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// mountVolumes makes a directory for each volume of the pod: the files of a Secret or a
// ConfigMap, an empty directory for a claim or an emptyDir. It returns the container's
// mount paths and the directories they stand for.
func mountVolumes(t *testing.T, ctx context.Context, pod *corev1.Pod, ctr *corev1.Container) map[string]string {
	t.Helper()
	vols := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		var files map[string][]byte
		mode := os.FileMode(0o644)
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			var s corev1.Secret
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: v.Secret.SecretName}, &s); err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			files, items = s.Data, v.Secret.Items
			if v.Secret.DefaultMode != nil {
				mode = os.FileMode(*v.Secret.DefaultMode)
			}
		case v.ConfigMap != nil:
			var cm corev1.ConfigMap
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: v.ConfigMap.Name}, &cm); err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			files, items = map[string][]byte{}, v.ConfigMap.Items
			for k, d := range cm.Data {
				files[k] = []byte(d)
			}
			if v.ConfigMap.DefaultMode != nil {
				mode = os.FileMode(*v.ConfigMap.DefaultMode)
			}
		case v.PersistentVolumeClaim != nil, v.EmptyDir != nil:
			// A volume PostgreSQL's user (when the test runs as root) must reach: a new
			// directory in the system's temporary folder with mode 0711, as ramd's test
			// environment makes data directories; removed after the processes stopped.
			dir, err := os.MkdirTemp("", "ramd-k8s-"+v.Name+"-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			if err := os.Chmod(dir, 0o711); err != nil {
				t.Fatal(err)
			}
			vols[v.Name] = dir
			continue
		default:
			t.Fatalf("volume %s: a kind the test cannot mount", v.Name)
		}
		dir := t.TempDir()
		if len(items) > 0 {
			picked := map[string][]byte{}
			for _, it := range items {
				picked[it.Path] = files[it.Key]
			}
			files = picked
		}
		for k, d := range files {
			if err := os.WriteFile(filepath.Join(dir, k), d, mode); err != nil {
				t.Fatal(err)
			}
		}
		vols[v.Name] = dir
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		dir, ok := vols[m.Name]
		if !ok {
			t.Fatalf("mount %s: no volume %s", m.MountPath, m.Name)
		}
		if m.SubPath != "" {
			t.Fatalf("mount %s: subPath is not supported by the test", m.MountPath)
		}
		mounts[m.MountPath] = dir
	}
	return mounts
}

var envRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// resolveEnv is the container's environment as the kubelet makes it (fieldRefs, Secret and
// ConfigMap keys, $(VAR) references to earlier variables), with the substitutions of the
// host: container ports to the pod's free ports, mount paths to their directories.
func resolveEnv(t *testing.T, ctx context.Context, pod *corev1.Pod, ctr *corev1.Container, ports map[int32]int, mounts map[string]string) []string {
	t.Helper()
	vals := map[string]string{}
	var order []string
	for _, e := range ctr.Env {
		var v string
		switch {
		case e.ValueFrom == nil:
			v = envRef.ReplaceAllStringFunc(e.Value, func(m string) string {
				if m == "$$" {
					return "$"
				}
				name := m[2 : len(m)-1]
				if val, ok := vals[name]; ok {
					return val
				}
				return m
			})
		case e.ValueFrom.FieldRef != nil:
			switch path := e.ValueFrom.FieldRef.FieldPath; path {
			case "metadata.name":
				v = pod.Name
			case "metadata.namespace":
				v = pod.Namespace
			case "status.podIP":
				var p corev1.Pod
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
					t.Fatal(err)
				}
				v = p.Status.PodIP
			case "status.hostIP":
				v = "127.0.0.1"
			case "spec.nodeName":
				v = pod.Spec.NodeName
			default:
				t.Fatalf("env %s: field %s is not resolved by the test", e.Name, path)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var s corev1.Secret
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}, &s); err != nil {
				t.Fatalf("env %s: %v", e.Name, err)
			}
			v = string(s.Data[ref.Key])
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			var cm corev1.ConfigMap
			if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}, &cm); err != nil {
				t.Fatalf("env %s: %v", e.Name, err)
			}
			v = cm.Data[ref.Key]
		default:
			t.Fatalf("env %s: a source the test cannot resolve", e.Name)
		}
		if _, seen := vals[e.Name]; !seen {
			order = append(order, e.Name)
		}
		vals[e.Name] = v
	}
	if len(ctr.EnvFrom) > 0 {
		t.Fatal("envFrom is not resolved by the test")
	}
	paths := slices.Collect(maps.Keys(mounts))
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range order {
		v := substitutePorts(vals[k], ports)
		for _, mp := range paths {
			if v == mp || strings.HasPrefix(v, mp+"/") {
				v = mounts[mp] + strings.TrimPrefix(v, mp)
				break
			}
		}
		out = append(out, k+"="+v)
	}
	return out
}

// substitutePorts replaces a container port by its host port where a value is the port
// itself or ends in ":<port>" (a listen address or a URL).
func substitutePorts(v string, ports map[int32]int) string {
	for from, to := range ports {
		f := strconv.Itoa(int(from))
		switch {
		case v == f:
			return strconv.Itoa(to)
		case strings.HasSuffix(v, ":"+f):
			return strings.TrimSuffix(v, f) + strconv.Itoa(to)
		}
	}
	return v
}

// start runs the pod's ramd (the container's main process), its log appended to logPath.
func (p *fakePod) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("starting ramd of %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

// postmasterPID reads the first line of postmaster.pid, 0 when there is none.
func (p *fakePod) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(p.dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	return pid
}

// kill SIGKILLs ramd and its postmaster, by pid, as a crash of the node would.
func (p *fakePod) kill(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	pm := p.postmasterPID()
	if pm == 0 {
		t.Fatalf("%s has no postmaster.pid", p.name)
	}
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL of ramd of %s: %v", p.name, err)
	}
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL of the postmaster (pid %d) of %s: %v", pm, p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ramd of %s not reaped 10s after SIGKILL", p.name)
	}
	p.cmd = nil
}

// stop stops ramd (SIGTERM: it stops PostgreSQL), SIGKILLing ramd and the postmaster by pid
// after a bound; on failure it shows the tail of the log.
func (p *fakePod) stop(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.Failed() {
		if b, err := os.ReadFile(p.logPath); err == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("ramd log of %s (last 40 lines):\n%s", p.name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	}
	if p.cmd != nil {
		stopProcess(t, "ramd of "+p.name, p.cmd.Process.Pid, p.done, 30*time.Second)
		p.cmd = nil
	}
	if pm := p.postmasterPID(); pm != 0 && syscall.Kill(pm, 0) == nil {
		// A postmaster outliving ramd (killed, or a stop that timed out): by its pid, and
		// gone before its directory is removed.
		_ = syscall.Kill(pm, syscall.SIGKILL)
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pm, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestSubstitutePorts(t *testing.T) {
	ports := map[int32]int{5432: 21001, 8008: 21002}
	cases := map[string]string{
		"5432":                     "21001",
		"127.0.0.11:8008":          "127.0.0.11:21002",
		"http://127.0.0.11:8008":   "http://127.0.0.11:21002",
		"54321":                    "54321",
		"127.0.0.11:18008":         "127.0.0.11:18008",
		"/var/lib/ramd/pgdata":     "/var/lib/ramd/pgdata",
		"consul-server.consul:850": "consul-server.consul:850",
	}
	for in, want := range cases {
		if got := substitutePorts(in, ports); got != want {
			t.Errorf("substitutePorts(%q) = %q, want %q", in, got, want)
		}
	}
}
