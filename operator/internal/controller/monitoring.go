package controller

import (
	"context"
	_ "embed"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// dashboardJSON is a copy of docs/grafana/ramd-dashboard.json (a test keeps them equal;
// make operator-generate copies it).
//
//go:embed grafana/ramd-dashboard.json
var dashboardJSON string

// Grafana's dashboard sidecar picks up ConfigMaps with this label (its default).
const (
	LabelGrafanaDashboard = "grafana_dashboard"
	dashboardKey          = "ramd-dashboard.json"
)

// PodMonitorGVK is the Prometheus operator's PodMonitor.
var PodMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "PodMonitor"}

// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=podmonitors,verbs=get;list;watch;create;update;patch;delete

// DashboardConfigMap is ramd's Grafana dashboard, labelled for Grafana's sidecar.
func DashboardConfigMap(c *ramdv1.PostgreSQLCluster) *corev1.ConfigMap {
	labels := commonLabels(c)
	labels[LabelGrafanaDashboard] = "1"
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: dashboardName(c), Namespace: c.Namespace, Labels: labels},
		Data:       map[string]string{dashboardKey: dashboardJSON},
	}
}

// PodMonitor has Prometheus scrape ramd's /metrics on the API port of every member.
func PodMonitor(c *ramdv1.PostgreSQLCluster) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": c.Name, "namespace": c.Namespace},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{LabelCluster: c.Name}},
			"podMetricsEndpoints": []any{
				map[string]any{"port": "api", "path": "/metrics"},
			},
		},
	}}
	u.SetGroupVersionKind(PodMonitorGVK)
	u.SetLabels(commonLabels(c))
	return u
}

// errNoPodMonitorCRD: spec.monitoring.prometheus asks for a PodMonitor, but the API server
// does not serve the kind (the Prometheus operator is not installed).
var errNoPodMonitorCRD = errors.New("the PodMonitor kind (monitoring.coreos.com/v1) is not installed: only the prometheus.io/* pod annotations are set")

// applyMonitoring creates, updates or removes the dashboard ConfigMap and the PodMonitor as
// spec.monitoring says, and sets the Monitoring condition. A missing PodMonitor kind is no
// error: the condition says so and the rest of the cluster is applied.
func (r *Reconciler) applyMonitoring(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	mon := c.Spec.Monitoring
	cm := DashboardConfigMap(c)
	if mon.Grafana {
		if err := upsert(ctx, r, c, cm, func(existing, cm *corev1.ConfigMap) {
			existing.Labels = cm.Labels
			existing.Data = cm.Data
		}); err != nil {
			return err
		}
	} else if err := r.deleteOwned(ctx, c, cm); err != nil {
		return err
	}

	pmErr := r.applyPodMonitor(ctx, c)
	if pmErr != nil && !errors.Is(pmErr, errNoPodMonitorCRD) {
		return pmErr
	}
	switch {
	case !mon.Prometheus && !mon.Grafana:
		meta.RemoveStatusCondition(&c.Status.Conditions, ramdv1.ConditionMonitoring)
	case mon.Prometheus && pmErr != nil:
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionMonitoring,
			Status: metav1.ConditionFalse, Reason: "PodMonitorKindMissing", Message: pmErr.Error(), ObservedGeneration: c.Generation})
	default:
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionMonitoring,
			Status: metav1.ConditionTrue, Reason: "Applied", Message: "the monitoring objects of the spec exist", ObservedGeneration: c.Generation})
	}
	return nil
}

// applyPodMonitor keeps the PodMonitor as the spec says, when the kind is served.
func (r *Reconciler) applyPodMonitor(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	if _, err := r.RESTMapper().RESTMapping(PodMonitorGVK.GroupKind(), PodMonitorGVK.Version); err != nil {
		if meta.IsNoMatchError(err) {
			if c.Spec.Monitoring.Prometheus {
				return errNoPodMonitorCRD
			}
			return nil
		}
		return fmt.Errorf("discovering the PodMonitor kind: %w", err)
	}
	want := PodMonitor(c)
	if !c.Spec.Monitoring.Prometheus {
		return r.deleteOwned(ctx, c, want)
	}
	pm := &unstructured.Unstructured{}
	pm.SetGroupVersionKind(PodMonitorGVK)
	pm.SetName(want.GetName())
	pm.SetNamespace(want.GetNamespace())
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, pm, func() error {
		pm.SetLabels(want.GetLabels())
		pm.Object["spec"] = want.Object["spec"]
		return controllerutil.SetControllerReference(c, pm, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("applying the PodMonitor %s/%s: %w", pm.GetNamespace(), pm.GetName(), err)
	}
	return nil
}

// deleteOwned deletes obj when it exists and the cluster controls it (an object of the same
// name the user made is left alone).
func (r *Reconciler) deleteOwned(ctx context.Context, c *ramdv1.PostgreSQLCluster, obj client.Object) error {
	cur, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("copying %T: unexpected type", obj)
	}
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading %T %s: %w", obj, obj.GetName(), err)
	}
	if ref := metav1.GetControllerOf(cur); ref == nil || ref.UID != c.UID {
		return nil
	}
	if err := r.Delete(ctx, cur); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}
