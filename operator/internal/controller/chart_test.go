package controller

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var chartDir = filepath.Join("..", "..", "charts", "ramd-operator")

// decodeDocs splits a multi-document YAML stream into objects, skipping empty documents.
func decodeDocs(t *testing.T, raw []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []*unstructured.Unstructured
	for {
		doc, err := dec.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading YAML: %v", err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("decoding YAML document: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// dryRun creates every object with a server-side dry run: the API server validates it
// (schemas, strict fields, CEL rules) and stores nothing.
func dryRun(t *testing.T, ctx context.Context, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		err := k8sClient.Create(ctx, o, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
		if err != nil {
			t.Errorf("%s %s refused by the API server: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func TestExampleClusterIsAccepted(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "postgresqlcluster.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeDocs(t, raw)
	if len(objs) != 1 || objs[0].GetKind() != "PostgreSQLCluster" {
		t.Fatalf("example holds %d objects", len(objs))
	}
	dryRun(t, ctx, objs)
}

// helmBin is RAMD_HELM_BIN, else the one scripts/build-helm.sh caches.
func helmBin() string {
	if b := os.Getenv("RAMD_HELM_BIN"); b != "" {
		return b
	}
	return filepath.Join(filepath.Dir(assetsDir()), "helm-v4.3.2", "helm")
}

func runHelm(t *testing.T, ctx context.Context, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	cmd := exec.CommandContext(ctx, helmBin(), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func TestHelmChart(t *testing.T) {
	needEnv(t)
	if _, err := os.Stat(helmBin()); err != nil {
		if os.Getenv("RAMD_TEST_REQUIRE_HELM") == "1" {
			t.Fatalf("no helm at %s (scripts/build-helm.sh builds it)", helmBin())
		}
		t.Skipf("no helm at %s (scripts/build-helm.sh builds it; RAMD_TEST_REQUIRE_HELM=1 makes this a failure)", helmBin())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := runHelm(t, ctx, "lint", "--strict", chartDir)
	t.Logf("helm lint: %s", bytes.TrimSpace(out))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ramd-system"}}
	if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rendered := runHelm(t, ctx, "template", "ramd", chartDir, "--namespace", "ramd-system", "--include-crds")
	objs := decodeDocs(t, rendered)
	kinds := map[string]int{}
	var apply []*unstructured.Unstructured
	for _, o := range objs {
		kinds[o.GetKind()]++
		// The CRD is installed already (envtest reads the same file).
		if o.GetKind() != "CustomResourceDefinition" {
			apply = append(apply, o)
		}
	}
	for _, k := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"} {
		if kinds[k] == 0 {
			t.Errorf("helm template rendered no %s (kinds %v)", k, kinds)
		}
	}
	dryRun(t, ctx, apply)
}
