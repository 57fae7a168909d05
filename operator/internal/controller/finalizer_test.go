package controller

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

func TestCleanupBackoff(t *testing.T) {
	for _, tc := range []struct {
		waiting, want time.Duration
	}{
		{0, 2 * time.Second},
		{3 * time.Second, 2 * time.Second},
		{10 * time.Second, 5 * time.Second},
		{time.Minute, 30 * time.Second},
		{9 * time.Minute, 4*time.Minute + 30*time.Second},
		{time.Hour, 5 * time.Minute},
	} {
		if got := CleanupBackoff(tc.waiting); got != tc.want {
			t.Errorf("CleanupBackoff(%s) = %s, want %s", tc.waiting, got, tc.want)
		}
	}
}

func TestConsulKeyPrefix(t *testing.T) {
	c := minimal("db", "pg")
	if got := ConsulKeyPrefix(c); got != "service/db-pg/" {
		t.Errorf("prefix %q, want service/db-pg/", got)
	}
}

// consulDev is a Consul agent in dev mode on loopback with ACLs on (default deny), from
// RAMD_CONSUL_BIN (scripts/build-consul.sh).
type consulDev struct {
	Addr      string // host:port of the HTTP API
	HTTPSAddr string // host:port of the HTTPS API, with TLS
	Token     string // the management token
}

// consulTLS is the PEM CA and the server certificate and key of an HTTPS listener.
type consulTLS struct {
	CA, Cert, Key []byte
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startConsulDev(t *testing.T) *consulDev {
	t.Helper()
	return startConsulDevTLS(t, nil)
}

func startConsulDevTLS(t *testing.T, tlsFiles *consulTLS) *consulDev {
	t.Helper()
	bin := os.Getenv("RAMD_CONSUL_BIN")
	if bin == "" {
		if os.Getenv("RAMD_TEST_REQUIRE_REAL") == "1" {
			t.Fatal("RAMD_TEST_REQUIRE_REAL=1 but RAMD_CONSUL_BIN is not set (export RAMD_CONSUL_BIN=$(scripts/build-consul.sh))")
		}
		t.Skip("RAMD_CONSUL_BIN not set (scripts/build-consul.sh builds the agent)")
	}
	dir := t.TempDir()
	c := &consulDev{Token: "d6b2a7c4-5e1f-4c3b-9a8d-1f2e3d4c5b6a"}
	httpPort := freeTCPPort(t)
	c.Addr = "127.0.0.1:" + strconv.Itoa(httpPort)
	hcl := fmt.Sprintf(`acl { enabled = true
default_policy = "deny"
tokens { initial_management = %q
agent = %q } }`, c.Token, c.Token)
	if tlsFiles != nil {
		https := freeTCPPort(t)
		c.HTTPSAddr = "127.0.0.1:" + strconv.Itoa(https)
		paths := map[string][]byte{"ca.pem": tlsFiles.CA, "server.pem": tlsFiles.Cert, "server-key.pem": tlsFiles.Key}
		for name, b := range paths {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		hcl += fmt.Sprintf(`
ports { https = %d }
tls { defaults { ca_file = %q
cert_file = %q
key_file = %q }
https { verify_incoming = false } }`, https, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	}
	args := []string{"agent", "-dev", "-node=operator-test", "-bind=127.0.0.1", "-client=127.0.0.1",
		"-http-port=" + strconv.Itoa(httpPort), "-dns-port=-1", "-grpc-port=-1",
		"-serf-lan-port=" + strconv.Itoa(freeTCPPort(t)), "-serf-wan-port=" + strconv.Itoa(freeTCPPort(t)),
		"-server-port=" + strconv.Itoa(freeTCPPort(t)), "-hcl=" + hcl}
	logf, err := os.Create(filepath.Join(dir, "consul.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting consul: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "consul.log")); err == nil {
				t.Logf("consul log:\n%s", b)
			}
		}
	})
	// Ready when a key can be written with the management token.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.put("ramd-operator-test/ready", "1")
		if err == nil {
			return c
		}
		select {
		case <-exited:
			t.Fatalf("consul exited during start-up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consul not ready within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *consulDev) do(method, key string, body []byte) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+"/v1/kv/"+key, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Consul-Token", c.Token)
	return http.DefaultClient.Do(req)
}

func (c *consulDev) put(key, value string) error {
	resp, err := c.do(http.MethodPut, key, []byte(value))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: status %d", key, resp.StatusCode)
	}
	return nil
}

// keys lists the keys under prefix.
func (c *consulDev) keys(t *testing.T, prefix string) []string {
	t.Helper()
	resp, err := c.do(http.MethodGet, prefix+"?keys=true", nil)
	if err != nil {
		t.Fatalf("listing %s: %v", prefix, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var keys []string
	if err := json.NewDecoder(resp.Body).Decode(&keys); err != nil {
		t.Fatalf("listing %s: status %d: %v", prefix, resp.StatusCode, err)
	}
	return keys
}

// TestDeleteRemovesConsulKeys: deleting a cluster stops its members, removes its keys from a
// real Consul (with the ACL token of the spec; a refused token shows as a condition and an
// event until it is fixed) and its claims when asked, and leaves another cluster's keys and
// claims alone.
func TestDeleteRemovesConsulKeys(t *testing.T) {
	needEnv(t)
	consul := startConsulDev(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "cleanup")
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

	tokenSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "consul-token"},
		Data: map[string][]byte{"token": []byte("not-the-token")}}
	if err := k8sClient.Create(ctx, tokenSecret); err != nil {
		t.Fatal(err)
	}
	var clusters []*ramdv1.PostgreSQLCluster
	for _, name := range []string{"pg", "pg2"} {
		c := minimal(ns, name)
		c.Spec.Consul = ramdv1.ConsulSpec{Address: consul.Addr, ACLTokenSecret: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "consul-token"}, Key: "token"}}
		c.Spec.Storage.DeleteClaimsOnDelete = true
		if err := k8sClient.Create(ctx, c); err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		clusters = append(clusters, c)
	}
	for _, c := range clusters {
		waitFor(t, 30*time.Second, c.Name+": finalizer and StatefulSet", func(ctx context.Context) error {
			var cur ramdv1.PostgreSQLCluster
			if err := k8sClient.Get(ctx, key(c.Name), &cur); err != nil {
				return err
			}
			if !controllerutil.ContainsFinalizer(&cur, FinalizerCleanup) {
				return fmt.Errorf("finalizers %v", cur.Finalizers)
			}
			var sts appsv1.StatefulSet
			if err := k8sClient.Get(ctx, key(c.Name), &sts); err != nil {
				return err
			}
			if sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
				return fmt.Errorf("claim retention on deletion %s, want Delete", sts.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
			}
			return nil
		})
	}
	// What ramd would have written, for both clusters (scopes cleanup-pg and cleanup-pg2:
	// the first is a string prefix of the second).
	written := []string{"leader", "members/pg-0", "members/pg-1", "config", "initialize", "sync", "status"}
	for _, scope := range []string{"cleanup-pg", "cleanup-pg2"} {
		for _, k := range written {
			if err := consul.put("service/"+scope+"/"+k, `{"x":1}`); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A member pod (no kubelet: the API server deletes an unscheduled pod at once) and the
	// claims of both clusters.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pg-0", Labels: commonLabels(clusters[0])},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "ramd", Image: "ramd:latest"}}}}
	if err := k8sClient.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	claims := map[string]*corev1.PersistentVolumeClaim{}
	for _, c := range clusters {
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + c.Name + "-0", Labels: commonLabels(c)},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}
		if err := k8sClient.Create(ctx, pvc); err != nil {
			t.Fatal(err)
		}
		claims[c.Name] = pvc
	}

	// Delete pg with a token Consul refuses: the resource stays, the condition and an event
	// say why, the members are stopped, nothing is removed from Consul.
	t0 := time.Now()
	if err := k8sClient.Delete(ctx, clusters[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "ConsulCleanup=False ConsulRefused", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key("pg"), &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionConsulCleanup)
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "ConsulRefused" {
			return fmt.Errorf("ConsulCleanup %+v", cond)
		}
		if !strings.Contains(cond.Message, "service/cleanup-pg/") || !strings.Contains(cond.Message, "403") ||
			!strings.Contains(cond.Message, "kubectl patch") {
			return fmt.Errorf("condition message %q lacks the prefix, Consul's answer or the way out", cond.Message)
		}
		return nil
	})
	t.Logf("refusal reported %s after the deletion", time.Since(t0).Round(time.Millisecond))
	if got := consul.keys(t, "service/cleanup-pg/"); len(got) != len(written) {
		t.Errorf("keys of pg after a refused cleanup: %v", got)
	}
	if err := k8sClient.Get(ctx, key("pg"), &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
		t.Errorf("StatefulSet of pg still there during the cleanup: %v", err)
	}
	if err := k8sClient.Get(ctx, key("pg-0"), &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Errorf("member pod pg-0 still there during the cleanup: %v", err)
	}
	waitFor(t, 10*time.Second, "a Warning event ConsulRefused", func(ctx context.Context) error {
		var evs eventsv1.EventList
		if err := k8sClient.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == "pg" && e.Reason == "ConsulRefused" && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("%d events, none ConsulRefused on pg", len(evs.Items))
	})

	// The right token: the next attempt (backoff 2 s at first) removes the keys and the
	// resource goes.
	tokenSecret.Data["token"] = []byte(consul.Token)
	if err := k8sClient.Update(ctx, tokenSecret); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	waitFor(t, 30*time.Second, "pg gone", func(ctx context.Context) error {
		err := k8sClient.Get(ctx, key("pg"), &ramdv1.PostgreSQLCluster{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%w)", err)
	})
	t.Logf("resource gone %s after the token was fixed", time.Since(t1).Round(time.Millisecond))
	if got := consul.keys(t, "service/cleanup-pg/"); len(got) != 0 {
		t.Errorf("keys of pg left after the deletion: %v", got)
	}
	if got := consul.keys(t, "service/cleanup-pg2/"); len(got) != len(written) {
		t.Errorf("keys of pg2 after pg's deletion: %v, want the %d written", got, len(written))
	}
	// Claims: pg's deleted (the PVC protection finalizer, which no controller removes here,
	// may keep it visible with a deletion timestamp), pg2's untouched.
	var pvc corev1.PersistentVolumeClaim
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(claims["pg"]), &pvc); err == nil && pvc.DeletionTimestamp == nil {
		t.Errorf("claim %s of pg not deleted", pvc.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(claims["pg2"]), &pvc); err != nil || pvc.DeletionTimestamp != nil {
		t.Errorf("claim of pg2: %v, deletion %v; want it untouched", err, pvc.DeletionTimestamp)
	}
	var sts2 appsv1.StatefulSet
	if err := k8sClient.Get(ctx, key("pg2"), &sts2); err != nil {
		t.Errorf("StatefulSet of pg2: %v", err)
	}
}

// TestDeleteKeepsClaimsByDefault: without deleteClaimsOnDelete the claims stay and the
// StatefulSet retains them.
func TestDeleteKeepsClaimsByDefault(t *testing.T) {
	needEnv(t)
	consul := startConsulDev(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "cleanup-keep")
	c := minimal(ns, "pg")
	c.Spec.Consul.Address = consul.Addr
	// The anonymous token may not write: give the operator the management token.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, Data: map[string][]byte{"t": []byte(consul.Token)}}
	if err := k8sClient.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	c.Spec.Consul.ACLTokenSecret = &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tok"}, Key: "t"}
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "StatefulSet", func(ctx context.Context) error {
		return k8sClient.Get(ctx, client.ObjectKeyFromObject(c), &appsv1.StatefulSet{})
	})
	if err := consul.put("service/cleanup-keep-pg/leader", "pg-0"); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-pg-0", Labels: commonLabels(c)},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if err := k8sClient.Create(ctx, pvc); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pg gone", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(c), c); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})
	if got := consul.keys(t, "service/cleanup-keep-pg/"); len(got) != 0 {
		t.Errorf("keys left: %v", got)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pvc), pvc); err != nil || pvc.DeletionTimestamp != nil {
		t.Errorf("claim: %v, deletion %v; want it kept", err, pvc.DeletionTimestamp)
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 and the name server.dc1.consul.
func testCA(t *testing.T) *consulTLS {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "operator test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "server.dc1.consul"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"server.dc1.consul"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &consulTLS{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
}

// TestDeleteOverTLS: the cleanup talks HTTPS to Consul with the CA of spec.consul.tls and
// its server name; a CA that did not sign Consul's certificate fails the cleanup until the
// Secret is fixed.
func TestDeleteOverTLS(t *testing.T) {
	needEnv(t)
	ca := testCA(t)
	other := testCA(t)
	consul := startConsulDevTLS(t, ca)
	ctx := testContext(t)
	ns := namespace(t, ctx, "cleanup-tls")
	caSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "consul-ca"},
		Data: map[string][]byte{"ca.crt": other.CA}}
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, Data: map[string][]byte{"t": []byte(consul.Token)}}
	for _, s := range []*corev1.Secret{caSecret, tok} {
		if err := k8sClient.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c := minimal(ns, "pg")
	c.Spec.Consul = ramdv1.ConsulSpec{Address: consul.HTTPSAddr,
		ACLTokenSecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tok"}, Key: "t"},
		TLS:            &ramdv1.ConsulTLSSpec{CASecret: "consul-ca", ServerName: "server.dc1.consul"}}
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(c)
	waitFinalizer(t, key)
	for _, k := range []string{"leader", "members/pg-0", "config"} {
		if err := consul.put("service/cleanup-tls-pg/"+k, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := k8sClient.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitConsulCleanup(t, key, "ConsulUnreachable", "certificate")
	if got := consul.keys(t, "service/cleanup-tls-pg/"); len(got) != 3 {
		t.Errorf("keys after a failed TLS cleanup: %v", got)
	}
	caSecret.Data["ca.crt"] = ca.CA
	if err := k8sClient.Update(ctx, caSecret); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pg gone", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key, &ramdv1.PostgreSQLCluster{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})
	if got := consul.keys(t, "service/cleanup-tls-pg/"); len(got) != 0 {
		t.Errorf("keys left after the cleanup over TLS: %v", got)
	}
}

// TestDeleteInTerminatingNamespace: when the token Secret is gone the cleanup waits with
// SecretMissing; once the namespace is being deleted (its Secrets go with it and never come
// back) the finalizer is removed and the keys are left, rather than holding the namespace.
func TestDeleteInTerminatingNamespace(t *testing.T) {
	needEnv(t)
	consul := startConsulDev(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "cleanup-nsgone")
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, Data: map[string][]byte{"t": []byte(consul.Token)}}
	if err := k8sClient.Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	c := minimal(ns, "pg")
	c.Spec.Consul = ramdv1.ConsulSpec{Address: consul.Addr,
		ACLTokenSecret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tok"}, Key: "t"}}
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(c)
	waitFinalizer(t, key)
	if err := consul.put("service/cleanup-nsgone-pg/leader", "pg-0"); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Delete(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitConsulCleanup(t, key, "SecretMissing", "tok")
	// The namespace goes (envtest has no namespace controller: it stays terminating, which
	// is what the operator looks at).
	if err := k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pg gone", func(ctx context.Context) error {
		if err := k8sClient.Get(ctx, key, &ramdv1.PostgreSQLCluster{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%w)", err)
		}
		return nil
	})
	if got := consul.keys(t, "service/cleanup-nsgone-pg/"); len(got) != 1 {
		t.Errorf("keys %v, want the leader key left (no token to remove it with)", got)
	}
}

// waitFinalizer waits until the resource at key carries the cleanup finalizer.
func waitFinalizer(t *testing.T, key client.ObjectKey) {
	t.Helper()
	waitFor(t, 30*time.Second, "finalizer", func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		if !controllerutil.ContainsFinalizer(&cur, FinalizerCleanup) {
			return fmt.Errorf("finalizers %v", cur.Finalizers)
		}
		return nil
	})
}

// waitConsulCleanup waits until the resource at key reports ConsulCleanup with reason and a
// message containing want.
func waitConsulCleanup(t *testing.T, key client.ObjectKey, reason, want string) {
	t.Helper()
	waitFor(t, 30*time.Second, "ConsulCleanup "+reason, func(ctx context.Context) error {
		var cur ramdv1.PostgreSQLCluster
		if err := k8sClient.Get(ctx, key, &cur); err != nil {
			return err
		}
		cond := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionConsulCleanup)
		if cond == nil || cond.Reason != reason || !strings.Contains(cond.Message, want) {
			return fmt.Errorf("ConsulCleanup %+v", cond)
		}
		return nil
	})
}
