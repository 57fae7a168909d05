package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// The operator embeds a copy of the dashboard of docs/ (go:embed cannot reach outside the
// module); make operator-generate refreshes it.
func TestDashboardCopyIsTheDocsFile(t *testing.T) {
	docs, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "grafana", "ramd-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(docs) != dashboardJSON {
		t.Errorf("grafana/ramd-dashboard.json differs from docs/grafana/ramd-dashboard.json: run make operator-generate")
	}
}

// podMonitorCRD is the smallest PodMonitor CRD: the kind, served, its content unchecked.
func podMonitorCRD() *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "podmonitors.monitoring.coreos.com"},
		"spec": map[string]any{
			"group": "monitoring.coreos.com",
			"scope": "Namespaced",
			"names": map[string]any{"kind": "PodMonitor", "listKind": "PodMonitorList", "plural": "podmonitors", "singular": "podmonitor"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
			}},
		},
	}}
	return u
}

func monitoringCondition(ctx context.Context, key types.NamespacedName) (*metav1.Condition, error) {
	var cur ramdv1.PostgreSQLCluster
	if err := k8sClient.Get(ctx, key, &cur); err != nil {
		return nil, err
	}
	res := meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionResourcesReady)
	if res == nil || res.Status != metav1.ConditionTrue {
		return nil, fmt.Errorf("ResourcesReady %+v", res)
	}
	return meta.FindStatusCondition(cur.Status.Conditions, ramdv1.ConditionMonitoring), nil
}

// TestMonitoringObjects: the Grafana dashboard ConfigMap; no PodMonitor and no failure while
// the PodMonitor kind is not installed; the PodMonitor once it is; both removed when the
// spec turns them off.
func TestMonitoringObjects(t *testing.T) {
	needEnv(t)
	ctx := testContext(t)
	ns := namespace(t, ctx, "monitoring")
	key := types.NamespacedName{Namespace: ns, Name: "pg"}
	c := minimal(ns, "pg")
	c.Spec.Monitoring = ramdv1.MonitoringSpec{Prometheus: true, Grafana: true}
	if err := k8sClient.Create(ctx, c); err != nil {
		t.Fatal(err)
	}

	var cm corev1.ConfigMap
	waitFor(t, 30*time.Second, "dashboard ConfigMap", func(ctx context.Context) error {
		return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pg-grafana-dashboard"}, &cm)
	})
	ownedBy(t, &cm, c)
	if cm.Labels[LabelGrafanaDashboard] != "1" {
		t.Errorf("dashboard labels %v, want grafana_dashboard=1", cm.Labels)
	}
	docs, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "grafana", "ramd-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["ramd-dashboard.json"] != string(docs) {
		t.Errorf("the dashboard ConfigMap does not hold docs/grafana/ramd-dashboard.json (%d bytes, keys %d)", len(docs), len(cm.Data))
	}

	// No PodMonitor kind: the condition says so, everything else is applied.
	waitFor(t, 20*time.Second, "Monitoring=False PodMonitorKindMissing", func(ctx context.Context) error {
		cond, err := monitoringCondition(ctx, key)
		if err != nil {
			return err
		}
		if cond == nil || cond.Status != metav1.ConditionFalse || cond.Reason != "PodMonitorKindMissing" {
			return fmt.Errorf("Monitoring %+v", cond)
		}
		return nil
	})

	// The Prometheus operator's CRD appears: the PodMonitor follows, without a restart.
	crd := podMonitorCRD()
	if err := k8sClient.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("installing the PodMonitor CRD: %v", err)
	}
	pm := &unstructured.Unstructured{}
	pm.SetGroupVersionKind(PodMonitorGVK)
	t0 := time.Now()
	waitFor(t, 30*time.Second, "PodMonitor", func(ctx context.Context) error {
		return k8sClient.Get(ctx, key, pm)
	})
	t.Logf("PodMonitor created %s after its CRD", time.Since(t0).Round(time.Millisecond))
	ownedBy(t, pm, c)
	sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	if sel[LabelCluster] != "pg" || len(sel) != 1 {
		t.Errorf("PodMonitor selector %v", sel)
	}
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != "api" || eps[0].(map[string]any)["path"] != "/metrics" {
		t.Errorf("PodMonitor endpoints %v, want port api path /metrics", eps)
	}
	waitFor(t, 20*time.Second, "Monitoring=True", func(ctx context.Context) error {
		cond, err := monitoringCondition(ctx, key)
		if err != nil {
			return err
		}
		if cond == nil || cond.Status != metav1.ConditionTrue {
			return fmt.Errorf("Monitoring %+v", cond)
		}
		return nil
	})

	// Both off: both objects go, and the condition with them.
	updateSpec(t, ctx, key, func(cur *ramdv1.PostgreSQLCluster) {
		cur.Spec.Monitoring = ramdv1.MonitoringSpec{}
	})
	waitFor(t, 20*time.Second, "monitoring objects removed", func(ctx context.Context) error {
		for _, o := range []client.Object{pm, &cm} {
			if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s still there (%w)", o.GetName(), err)
			}
		}
		cond, err := monitoringCondition(ctx, key)
		if err != nil {
			return err
		}
		if cond != nil {
			return fmt.Errorf("Monitoring condition still there: %+v", cond)
		}
		return nil
	})
}
