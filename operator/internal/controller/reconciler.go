package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// Reconciler keeps the objects of each PostgreSQLCluster as the spec says and its status as
// ramd reports it.
type Reconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// Ramd reads the cluster's status from its members (HTTPRamdClient in production).
	Ramd RamdClient
	// Resync is how often a cluster is looked at again without an event: the status and
	// the role labels follow ramd at this pace (and on every pod event).
	Resync time.Duration
	// NodeIP is the IP address of the operator's node (HOST_IP): with spec.consul.useHostIP
	// the Consul cleanup on deletion talks to that node's client agent.
	NodeIP string
	// Recorder records events on the clusters (cleanup trouble); nil records none.
	Recorder events.EventRecorder
	// Switchover asks ramd for the rolling update's switchover; nil uses Ramd when it can.
	Switchover RollingSwitchover

	switchovers pendingSwitchovers
	restarts    restartMemory
	// pushedConfig is the hash of the dynamic configuration ramd last accepted, per
	// cluster UID (the status says the same once the cache has it).
	pushedConfig sync.Map
}

// +kubebuilder:rbac:groups=ramd.io,resources=postgresqlclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=ramd.io,resources=postgresqlclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ramd.io,resources=postgresqlclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=list;delete;deletecollection
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reconciler: it watches the resources and what they own.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Resync == 0 {
		r.Resync = 5 * time.Second
	}
	err := ctrl.NewControllerManagedBy(mgr).
		For(&ramdv1.PostgreSQLCluster{}).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		// A pod event (readiness, address, deletion) is a moment to ask ramd again.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToCluster)).
		Named("postgresqlcluster").
		Complete(r)
	if err != nil {
		return fmt.Errorf("setting up the PostgreSQLCluster controller: %w", err)
	}
	return nil
}

// podToCluster maps a member pod to its cluster through the cluster label.
func podToCluster(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelCluster]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	var c ramdv1.PostgreSQLCluster
	if err := r.Get(ctx, req.NamespacedName, &c); err != nil {
		// Deleted: the owned objects go with it (owner references, garbage collector).
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if c.DeletionTimestamp != nil {
		return r.finalize(ctx, &c)
	}
	if wrote, err := r.ensureFinalizer(ctx, &c); err != nil || wrote {
		// The write queues the resource again: the objects are applied then.
		return ctrl.Result{}, err
	}
	before := c.Status.DeepCopy()
	sts, applyErr := r.apply(ctx, &c)
	if applyErr != nil {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionResourcesReady,
			Status: metav1.ConditionFalse, Reason: "ApplyFailed", Message: applyErr.Error(), ObservedGeneration: c.Generation})
	} else {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionResourcesReady,
			Status: metav1.ConditionTrue, Reason: "Applied", Message: "StatefulSet, Services, ConfigMap, Secret and PodDisruptionBudget are as specified", ObservedGeneration: c.Generation})
	}
	if err := r.observe(ctx, &c, sts); err != nil {
		logger.V(1).Info("cluster status not read from ramd", "error", err.Error())
	}
	if applyErr == nil {
		if err := r.roll(ctx, &c, sts); err != nil {
			logger.Error(err, "rolling update")
		}
	}
	if err := r.switchoverOnRequest(ctx, &c); err != nil {
		logger.Info("requested switchover not carried out yet", "error", err.Error())
	}
	if err := r.restartPending(ctx, &c); err != nil {
		logger.Info("pending restart not carried out yet", "error", err.Error())
	}
	c.Status.ObservedGeneration = c.Generation
	if !equalStatus(before, &c.Status) {
		if err := r.Status().Update(ctx, &c); err != nil {
			if apierrors.IsConflict(err) {
				// The resource changed since it was read: its new version is queued already.
				return ctrl.Result{RequeueAfter: r.Resync}, nil
			}
			return ctrl.Result{}, fmt.Errorf("updating the status of %s: %w", req.NamespacedName, err)
		}
	}
	if applyErr != nil {
		// Often a Secret the user has yet to create: look again at the resync pace rather
		// than backing off for minutes.
		logger.Error(applyErr, "applying the cluster's objects")
	}
	return ctrl.Result{RequeueAfter: r.Resync}, nil
}

// equalStatus compares two statuses ignoring the conditions' transition times (which
// SetStatusCondition keeps when the status does not change).
func equalStatus(a, b *ramdv1.PostgreSQLClusterStatus) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// apply creates or updates every object of the cluster, each owned by it.
func (r *Reconciler) apply(ctx context.Context, c *ramdv1.PostgreSQLCluster) (*appsv1.StatefulSet, error) {
	if err := r.ensureCredentials(ctx, c); err != nil {
		return nil, err
	}
	cm, err := ConfigMap(c)
	if err != nil {
		return nil, err
	}
	if err := upsert(ctx, r, c, cm, func(existing, cm *corev1.ConfigMap) {
		existing.Labels = cm.Labels
		existing.Data = cm.Data
	}); err != nil {
		return nil, err
	}
	for _, svc := range Services(c) {
		if err := upsert(ctx, r, c, svc, func(existing, svc *corev1.Service) {
			// Keep what the API server assigned (cluster IP, node ports).
			existing.Labels = svc.Labels
			existing.Annotations = svc.Annotations
			existing.Spec.Selector = svc.Spec.Selector
			existing.Spec.PublishNotReadyAddresses = svc.Spec.PublishNotReadyAddresses
			if existing.Spec.Type != svc.Spec.Type {
				existing.Spec.Type = svc.Spec.Type
				if svc.Spec.Type == corev1.ServiceTypeClusterIP {
					for i := range existing.Spec.Ports {
						existing.Spec.Ports[i].NodePort = 0
					}
				}
			}
			if len(existing.Spec.Ports) != len(svc.Spec.Ports) {
				existing.Spec.Ports = svc.Spec.Ports
			}
		}); err != nil {
			return nil, err
		}
	}
	pdb := PodDisruptionBudget(c)
	if err := upsert(ctx, r, c, pdb, func(existing, pdb *policyv1.PodDisruptionBudget) {
		existing.Labels = pdb.Labels
		existing.Spec.MaxUnavailable = pdb.Spec.MaxUnavailable
	}); err != nil {
		return nil, err
	}
	if err := r.applyMonitoring(ctx, c); err != nil {
		return nil, err
	}
	want := StatefulSet(c)
	if err := r.holdScaleDown(ctx, c, want); err != nil {
		return nil, err
	}
	if err := upsert(ctx, r, c, want, func(existing, want *appsv1.StatefulSet) {
		// The selector, service name and claim templates are immutable; the rest follows
		// the spec. Scaling is the replicas field.
		existing.Labels = want.Labels
		existing.Spec.Replicas = want.Spec.Replicas
		if existing.Annotations[AnnotationTemplateHash] != want.Annotations[AnnotationTemplateHash] {
			if existing.Annotations == nil {
				existing.Annotations = map[string]string{}
			}
			existing.Annotations[AnnotationTemplateHash] = want.Annotations[AnnotationTemplateHash]
			existing.Spec.Template = want.Spec.Template
		}
		existing.Spec.UpdateStrategy.Type = want.Spec.UpdateStrategy.Type
		existing.Spec.PersistentVolumeClaimRetentionPolicy = want.Spec.PersistentVolumeClaimRetentionPolicy
	}); err != nil {
		return nil, err
	}
	return want, nil
}

// upsert creates obj, or updates the existing object through mutate(existing, desired);
// either way the object is controlled by the cluster. An unchanged object is not written.
func upsert[T client.Object](ctx context.Context, r *Reconciler, c *ramdv1.PostgreSQLCluster, obj T, mutate func(existing, desired T)) error {
	desired, ok := obj.DeepCopyObject().(T)
	if !ok {
		return fmt.Errorf("copying %T: unexpected type", obj)
	}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		// A new object keeps the rendered content whole; an existing one takes only the
		// fields the operator owns.
		if obj.GetResourceVersion() != "" {
			mutate(obj, desired)
		}
		return controllerutil.SetControllerReference(c, obj, r.Scheme)
	})
	if err != nil {
		return fmt.Errorf("applying %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
