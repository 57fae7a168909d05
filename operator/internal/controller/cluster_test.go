package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// waitFor polls cond every 100ms until it returns nil, failing with its last error after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = cond(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %v", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// namespace creates a namespace of the test's own.
func namespace(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Create(ctx, ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// minimal is a valid cluster with only the required fields.
func minimal(ns, name string) *ramdv1.PostgreSQLCluster {
	return &ramdv1.PostgreSQLCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ramdv1.PostgreSQLClusterSpec{
			Replicas:   3,
			PostgreSQL: ramdv1.PostgreSQLSpec{Version: "17"},
			Storage:    ramdv1.StorageSpec{Size: resource.MustParse("1Gi")},
			Consul:     ramdv1.ConsulSpec{Address: "consul-server.consul:8500"},
		},
	}
}

func TestSchemaRejectsInvalidSpecs(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "schema")
	cases := []struct {
		name   string
		mutate func(*ramdv1.PostgreSQLCluster)
		want   []string // each must appear in the API server's refusal
	}{
		{"replicas 0", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Replicas = 0 },
			[]string{"spec.replicas", "greater than or equal to 1"}},
		{"unknown version", func(c *ramdv1.PostgreSQLCluster) { c.Spec.PostgreSQL.Version = "9" },
			[]string{"spec.postgresql.version", "Unsupported value"}},
		{"bad service type", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Services.Type = "ExternalName" },
			[]string{"spec.services.type", "Unsupported value"}},
		{"sync count not below replicas", func(c *ramdv1.PostgreSQLCluster) {
			c.Spec.Synchronous = &ramdv1.SynchronousSpec{Mode: "on", Count: 3}
		}, []string{"synchronous.count must be less than replicas"}},
		{"bad sync mode", func(c *ramdv1.PostgreSQLCluster) {
			c.Spec.Synchronous = &ramdv1.SynchronousSpec{Mode: "always", Count: 1}
		}, []string{"spec.synchronous.mode"}},
		{"negative storage", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Storage.Size = resource.MustParse("-1Gi") },
			[]string{"spec.storage.size", "size must be positive"}},
		{"zero WAL volume", func(c *ramdv1.PostgreSQLCluster) { q := resource.MustParse("0"); c.Spec.Storage.WALSize = &q },
			[]string{"spec.storage.walSize", "walSize must be positive"}},
		{"consul address and host IP", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Consul.UseHostIP = true },
			[]string{"spec.consul", "set exactly one of address and useHostIP"}},
		{"consul neither", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Consul.Address = "" },
			[]string{"spec.consul", "set exactly one of address and useHostIP"}},
		{"replicas above 32", func(c *ramdv1.PostgreSQLCluster) { c.Spec.Replicas = 33 },
			[]string{"spec.replicas", "less than or equal to 32"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := minimal(ns, fmt.Sprintf("bad-%d", i))
			tc.mutate(c)
			err := k8sClient.Create(ctx, c)
			if err == nil {
				t.Fatalf("accepted; want a refusal naming %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused with %v, want 422 Invalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not mention %q", err, w)
				}
			}
		})
	}
	// An unknown field is refused too (strict field validation, as kubectl apply does).
	raw, err := json.Marshal(minimal(ns, "unknown-field"))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	obj["spec"].(map[string]any)["extra"] = true
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(ramdv1.GroupVersion.String())
	u.SetKind("PostgreSQLCluster")
	err = k8sClient.Create(ctx, u, client.FieldValidation(metav1.FieldValidationStrict))
	if err == nil || !strings.Contains(err.Error(), `unknown field "spec.extra"`) {
		t.Errorf("unknown field spec.extra: got %v, want a refusal naming it", err)
	}
	// Defaults come from the schema.
	ok := minimal(ns, "defaults")
	ok.Spec.PostgreSQL.Version = ""
	if err := k8sClient.Create(ctx, ok); err != nil {
		t.Fatalf("valid minimal cluster refused: %v", err)
	}
	if ok.Spec.PostgreSQL.Version != "17" || ok.Spec.Ramd.Image != "ramd:latest" || ok.Spec.Services.Type != "ClusterIP" {
		t.Errorf("defaults not applied: version %q image %q service type %q", ok.Spec.PostgreSQL.Version, ok.Spec.Ramd.Image, ok.Spec.Services.Type)
	}
}

// full is a cluster using every part of the spec.
func full(ns, name string) *ramdv1.PostgreSQLCluster {
	c := minimal(ns, name)
	class := "fast"
	wal := resource.MustParse("512Mi")
	c.Spec.PostgreSQL.Image = "registry.example/ramd:1.2.3"
	c.Spec.PostgreSQL.Parameters = map[string]string{"max_connections": "200", "work_mem": "8MB"}
	c.Spec.PostgreSQL.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")}}
	c.Spec.Storage = ramdv1.StorageSpec{Size: resource.MustParse("10Gi"), StorageClass: &class, WALSize: &wal}
	c.Spec.Consul = ramdv1.ConsulSpec{UseHostIP: true, Port: 8501,
		ACLTokenSecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "consul-token"}, Key: "token"},
		TLS:            &ramdv1.ConsulTLSSpec{CASecret: "consul-ca", ServerName: "server.dc1.consul"}}
	c.Spec.Synchronous = &ramdv1.SynchronousSpec{Mode: "on", Count: 1}
	c.Spec.Backup = &apiextensionsv1.JSON{Raw: []byte(`{"tool":"pgbackrest","schedules":{"full":{"cron":"0 1 * * 0"}}}`)}
	c.Spec.Services = ramdv1.ServicesSpec{Type: "LoadBalancer", Annotations: map[string]string{"lb.example/internal": "true"}}
	c.Spec.Monitoring = ramdv1.MonitoringSpec{Prometheus: true}
	return c
}

// ownedBy fails unless obj is controlled by c (the garbage collector deletes it with c).
func ownedBy(t *testing.T, obj client.Object, c *ramdv1.PostgreSQLCluster) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != c.UID || ref.Kind != "PostgreSQLCluster" || ref.Name != c.Name ||
		ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
		t.Errorf("%T %s: controller reference %+v, want the cluster %s (uid %s) blocking deletion", obj, obj.GetName(), ref, c.Name, c.UID)
	}
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			m[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil:
			m[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.SecretKeyRef != nil:
			m[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return m
}

func TestReconcileCreatesScalesAndOwns(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "reconcile")
	c := full(ns, "demo")
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatalf("creating the cluster: %v", err)
	}
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

	var sts appsv1.StatefulSet
	t0 := time.Now()
	waitFor(t, 30*time.Second, "StatefulSet created", func(ctx context.Context) error {
		return k8sClient.Get(ctx, key("demo"), &sts)
	})
	t.Logf("StatefulSet created %s after the resource", time.Since(t0).Round(time.Millisecond))
	ownedBy(t, &sts, c)
	if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "demo-members" {
		t.Errorf("replicas %d service %q, want 3 and demo-members", *sts.Spec.Replicas, sts.Spec.ServiceName)
	}
	pod := sts.Spec.Template
	ctr := pod.Spec.Containers[0]
	if ctr.Image != "registry.example/ramd:1.2.3" {
		t.Errorf("image %q", ctr.Image)
	}
	if ctr.Resources.Requests.Cpu().String() != "500m" {
		t.Errorf("cpu request %s", ctr.Resources.Requests.Cpu())
	}
	e := envMap(ctr)
	for k, want := range map[string]string{
		"RAMD_SCOPE":                        "reconcile-demo",
		"RAMD_NAME":                         "field:metadata.name",
		"RAMD_PG_BIN_DIR":                   "/usr/lib/postgresql/17/bin",
		"RAMD_PG_CONNECT_ADDRESS":           "$(POD_IP)",
		"RAMD_API_LISTEN":                   "$(POD_IP):8008",
		"RAMD_PG_SUPERUSER_PASSWORD_FILE":   "/etc/ramd/secrets/superuser-password",
		"RAMD_PG_REPLICATION_PASSWORD_FILE": "/etc/ramd/secrets/replication-password",
		"RAMD_BOOTSTRAP_CONFIG":             "/etc/ramd/config/bootstrap.json",
		"RAMD_PG_WAL_DIR":                   "/var/lib/ramd/wal/pg_wal",
		"RAMD_SYNCHRONOUS_MODE":             "on",
		"RAMD_SYNCHRONOUS_NODE_COUNT":       "1",
		"HOST_IP":                           "field:status.hostIP",
		"CONSUL_HTTP_ADDR":                  "$(HOST_IP):8501",
		"CONSUL_HTTP_TOKEN":                 "secret:consul-token/token",
		"CONSUL_HTTP_SSL":                   "true",
		"CONSUL_CACERT":                     "/etc/ramd/consul-tls/ca.crt",
		"CONSUL_TLS_SERVER_NAME":            "server.dc1.consul",
	} {
		if e[k] != want {
			t.Errorf("env %s = %q, want %q", k, e[k], want)
		}
	}
	// $(POD_IP) expands only from a variable defined before it.
	if ctr.Env[0].Name != "POD_IP" {
		t.Errorf("first variable %s, want POD_IP", ctr.Env[0].Name)
	}
	if ctr.LivenessProbe.HTTPGet.Path != "/liveness" || ctr.ReadinessProbe.HTTPGet.Path != "/readiness" {
		t.Errorf("probes %s %s", ctr.LivenessProbe.HTTPGet.Path, ctr.ReadinessProbe.HTTPGet.Path)
	}
	if g := *pod.Spec.TerminationGracePeriodSeconds; g <= handoverWait {
		t.Errorf("grace period %ds not above ramd's handover wait %ds", g, handoverWait)
	}
	if pod.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("pod annotations %v lack the scrape annotation", pod.Annotations)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 2 || sts.Spec.VolumeClaimTemplates[0].Name != "data" ||
		sts.Spec.VolumeClaimTemplates[1].Name != "wal" {
		t.Fatalf("claim templates %+v, want data and wal", sts.Spec.VolumeClaimTemplates)
	}
	data := sts.Spec.VolumeClaimTemplates[0].Spec
	if data.Resources.Requests.Storage().String() != "10Gi" || *data.StorageClassName != "fast" {
		t.Errorf("data claim %s class %v", data.Resources.Requests.Storage(), data.StorageClassName)
	}
	if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("claims are not kept on deletion")
	}

	// Services: headless for the members, rw and ro by role label.
	var svcs []client.Object
	for name, want := range map[string]string{"demo-members": "", "demo-rw": RolePrimary, "demo-ro": RoleReplica} {
		var s corev1.Service
		waitFor(t, 10*time.Second, "Service "+name, func(ctx context.Context) error { return k8sClient.Get(ctx, key(name), &s) })
		ownedBy(t, &s, c)
		svcs = append(svcs, &s)
		if s.Spec.Selector[LabelCluster] != "demo" || s.Spec.Selector[LabelRole] != want {
			t.Errorf("Service %s selector %v, want role %q", name, s.Spec.Selector, want)
		}
		if want == "" {
			if s.Spec.ClusterIP != corev1.ClusterIPNone || !s.Spec.PublishNotReadyAddresses {
				t.Errorf("Service %s: cluster IP %q, publishNotReady %v; want headless publishing all", name, s.Spec.ClusterIP, s.Spec.PublishNotReadyAddresses)
			}
		} else if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Annotations["lb.example/internal"] != "true" {
			t.Errorf("Service %s: type %s annotations %v", name, s.Spec.Type, s.Annotations)
		}
	}

	// The dynamic configuration ramd bootstraps with.
	var cm corev1.ConfigMap
	waitFor(t, 10*time.Second, "ConfigMap", func(ctx context.Context) error { return k8sClient.Get(ctx, key("demo-config"), &cm) })
	ownedBy(t, &cm, c)
	var doc struct {
		PostgreSQL struct {
			Parameters map[string]string `json:"parameters"`
		} `json:"postgresql"`
		SyncMode  string         `json:"synchronous_mode"`
		SyncCount int            `json:"synchronous_node_count"`
		Backup    map[string]any `json:"backup"`
	}
	if err := json.Unmarshal([]byte(cm.Data["bootstrap.json"]), &doc); err != nil {
		t.Fatalf("bootstrap.json: %v\n%s", err, cm.Data["bootstrap.json"])
	}
	if doc.PostgreSQL.Parameters["max_connections"] != "200" || doc.SyncMode != "on" || doc.SyncCount != 1 || doc.Backup["tool"] != "pgbackrest" {
		t.Errorf("bootstrap.json %s", cm.Data["bootstrap.json"])
	}

	// Generated passwords, each different.
	var sec corev1.Secret
	waitFor(t, 10*time.Second, "Secret", func(ctx context.Context) error { return k8sClient.Get(ctx, key("demo-credentials"), &sec) })
	ownedBy(t, &sec, c)
	seen := map[string]bool{}
	for _, k := range []string{KeySuperuserPassword, KeyReplicationPassword, KeyAPIPassword} {
		if len(sec.Data[k]) < 32 || seen[string(sec.Data[k])] {
			t.Errorf("secret key %s: %d bytes (or a repeat)", k, len(sec.Data[k]))
		}
		seen[string(sec.Data[k])] = true
	}
	var pdb policyv1.PodDisruptionBudget
	waitFor(t, 10*time.Second, "PodDisruptionBudget", func(ctx context.Context) error { return k8sClient.Get(ctx, key("demo"), &pdb) })
	ownedBy(t, &pdb, c)
	if pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB max unavailable %v", pdb.Spec.MaxUnavailable)
	}

	// Status without a kubelet: no pod has an address, so ramd cannot be asked; the phase
	// comes from the StatefulSet and a condition says why there is no more.
	waitFor(t, 20*time.Second, "status conditions", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key("demo"), &cur); err != nil {
			return err
		}
		res := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionResourcesReady)
		reach := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionMembersReachable)
		switch {
		case res == nil || res.Status != metav1.ConditionTrue:
			return fmt.Errorf("ResourcesReady %+v", res)
		case reach == nil || reach.Status != metav1.ConditionFalse || reach.Reason != "NoPodAddresses":
			return fmt.Errorf("MembersReachable %+v", reach)
		case cur.Status.Phase != ramdv1.PhaseCreating:
			return fmt.Errorf("phase %q, want Creating", cur.Status.Phase)
		case cur.Status.ObservedGeneration != cur.Generation:
			return fmt.Errorf("observed generation %d of %d", cur.Status.ObservedGeneration, cur.Generation)
		}
		return nil
	})

	// Idempotent: with nothing changed, further reconciles (every 300ms here) write nothing.
	rv := map[string]string{}
	objs := append([]client.Object{&sts, &cm, &sec, &pdb}, svcs...)
	for _, o := range objs {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		rv[o.GetName()+fmt.Sprintf("%T", o)] = o.GetResourceVersion()
	}
	time.Sleep(1500 * time.Millisecond)
	for _, o := range objs {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatal(err)
		}
		if rv[o.GetName()+fmt.Sprintf("%T", o)] != o.GetResourceVersion() {
			t.Errorf("%T %s rewritten without a change (resource version %s → %s)", o, o.GetName(), rv[o.GetName()+fmt.Sprintf("%T", o)], o.GetResourceVersion())
		}
	}

	// Scale 3 → 5: the StatefulSet follows.
	updateSpec(t, ctx, key("demo"), func(cur *ramdv1.PostgreSQLCluster) {
		cur.Spec.Replicas = 5
		cur.Spec.PostgreSQL.Parameters["work_mem"] = "16MB"
	})
	t0 = time.Now()
	waitFor(t, 20*time.Second, "StatefulSet at 5 replicas", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key("demo"), &sts); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 5 {
			return fmt.Errorf("replicas %d", *sts.Spec.Replicas)
		}
		if err := k8sClient.Get(ctx, key("demo-config"), &cm); err != nil {
			return err
		}
		if !strings.Contains(cm.Data["bootstrap.json"], `"16MB"`) {
			return fmt.Errorf("ConfigMap not updated: %s", cm.Data["bootstrap.json"])
		}
		return nil
	})
	t.Logf("scale 3→5 reached the StatefulSet in %s", time.Since(t0).Round(time.Millisecond))

	// Deletion: the finalizer stops the members (the StatefulSet goes) and then removes the
	// cluster's Consul keys; this cluster's Consul token Secret does not exist, so the
	// resource stays with a condition saying so, until the finalizer is removed by hand as
	// documented.
	// Everything else it created carries a controller reference to it, which is what the
	// garbage collector (absent in envtest) deletes by. Claims are kept by the retention
	// policy.
	cur := ramdv1.PostgreSQLCluster{ObjectMeta: metav1.ObjectMeta{Namespace: key("demo").Namespace, Name: key("demo").Name}}
	if err := k8sClient.Delete(ctx, &cur); err != nil {
		t.Fatalf("deleting: %v", err)
	}
	waitFor(t, 30*time.Second, "ConsulCleanup=False SecretMissing", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key("demo"), &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionConsulCleanup)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "SecretMissing" || !strings.Contains(cond.Message, "consul-token") {
			return fmt.Errorf("ConsulCleanup %+v", cond)
		}
		return nil
	})
	if err := k8sClient.Get(ctx, key("demo"), &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
		t.Errorf("StatefulSet still there during the cleanup: %v", err)
	}
	forced := []byte(`[{"op":"remove","path":"/metadata/finalizers"}]`)
	if err := k8sClient.Patch(ctx, &cur, client.RawPatch(types.JSONPatchType, forced)); err != nil {
		t.Fatalf("removing the finalizer by hand: %v", err)
	}
	waitFor(t, 10*time.Second, "cluster gone", func(ctx context.Context) error {
		err := k8sClient.Get(ctx, key("demo"), &ramdv1.PostgreSQLCluster{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})
	for _, o := range objs[1:] {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			t.Fatalf("%T %s: %v", o, o.GetName(), err)
		}
		ownedBy(t, o, c)
	}
}

func TestGivenSecretMustExist(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "given-secret")
	c := minimal(ns, "own")
	c.Spec.SuperuserSecret = "mine"
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	key := types.NamespacedName{Namespace: ns, Name: "own"}
	waitFor(t, 20*time.Second, "ResourcesReady false", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionResourcesReady)
		if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "mine") {
			return fmt.Errorf("ResourcesReady %+v", cond)
		}
		return nil
	})
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}, Data: map[string][]byte{
		KeySuperuserPassword: []byte("a"), KeyReplicationPassword: []byte("b"), KeyAPIPassword: []byte("c")}}
	if err := k8sClient.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "StatefulSet with the given Secret", func(ctx context.Context) error {
		var sts appsv1.StatefulSet
		if err := k8sClient.Get(ctx, key, &sts); err != nil {
			return err
		}
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Name == "credentials" && v.Secret.SecretName == "mine" {
				return nil
			}
		}
		return fmt.Errorf("no credentials volume from Secret mine")
	})
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "own-credentials"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("a credentials Secret was generated although one was given: %v", err)
	}
}
