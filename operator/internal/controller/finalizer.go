package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// FinalizerCleanup holds a deleted PostgreSQLCluster until its members are stopped and its
// keys are removed from Consul (and its claims, when spec.storage.deleteClaimsOnDelete).
const FinalizerCleanup = "ramd.io/cleanup"

// ramdKeyNamespace is ramd's RAMD_NAMESPACE default: a cluster's keys are under
// "service/<scope>/" (the operator does not set RAMD_NAMESPACE).
const ramdKeyNamespace = "service"

// membersStopWait bounds the wait for the member pods to go before the keys are removed:
// a pod stuck terminating (an unreachable node) does not hold the cleanup forever.
const membersStopWait = 4 * terminationSeconds * time.Second

// Backoff of the Consul cleanup while Consul cannot be reached or refuses.
const (
	cleanupBackoffMin = 2 * time.Second
	cleanupBackoffMax = 5 * time.Minute
)

// ConsulKeyPrefix is the prefix of every key of the cluster in Consul, with its trailing
// slash so that a recursive delete of "service/ns-pg/" leaves "service/ns-pg2/" alone.
func ConsulKeyPrefix(c *ramdv1.PostgreSQLCluster) string {
	return ramdKeyNamespace + "/" + Scope(c) + "/"
}

// CleanupBackoff is the wait before the next cleanup attempt, growing with the time the
// resource has been waiting for it: half of it, between 2 s and 5 min.
func CleanupBackoff(waiting time.Duration) time.Duration {
	return min(max(waiting/2, cleanupBackoffMin), cleanupBackoffMax)
}

// ensureFinalizer adds the cleanup finalizer to a live resource; it reports whether it wrote.
func (r *Reconciler) ensureFinalizer(ctx context.Context, c *ramdv1.PostgreSQLCluster) (bool, error) {
	if controllerutil.ContainsFinalizer(c, FinalizerCleanup) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(c.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(c, FinalizerCleanup)
	if err := r.Patch(ctx, c, patch); err != nil {
		return false, fmt.Errorf("adding the finalizer %s to %s: %w", FinalizerCleanup, c.Name, err)
	}
	return true, nil
}

// finalize runs the cleanup of a deleted resource: members stopped first (a running ramd
// would write its keys again), then the Consul keys, then the claims when asked; the
// finalizer goes last. A step that cannot finish yet is retried with backoff and shows in
// the ConsulCleanup condition and as an event.
func (r *Reconciler) finalize(ctx context.Context, c *ramdv1.PostgreSQLCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(c, FinalizerCleanup) {
		return ctrl.Result{}, nil
	}
	logger := log.FromContext(ctx)
	waiting := time.Since(c.DeletionTimestamp.Time)

	stopped, err := r.stopMembers(ctx, c)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !stopped && waiting < membersStopWait {
		r.setCleanupCondition(ctx, c, metav1.ConditionFalse, "WaitingForMembers",
			"waiting for the member pods to stop before removing the Consul keys under "+ConsulKeyPrefix(c))
		return ctrl.Result{RequeueAfter: cleanupBackoffMin}, nil
	}

	if err := r.deleteConsulKeys(ctx, c); err != nil {
		reason := "ConsulUnreachable"
		var refused *consulRefusedError
		switch {
		case errors.As(err, &refused):
			reason = "ConsulRefused"
		case apierrors.IsNotFound(err):
			// The token or CA Secret is gone. When its namespace is being deleted it will
			// not come back, and waiting would hold the namespace forever: the keys stay.
			reason = "SecretMissing"
			if gone, nsErr := r.namespaceTerminating(ctx, c.Namespace); nsErr == nil && gone {
				logger.Info("namespace terminating and the Consul credentials are gone: leaving the cluster's Consul keys",
					"prefix", ConsulKeyPrefix(c), "error", err.Error())
				return r.removeFinalizer(ctx, c)
			}
		}
		msg := fmt.Sprintf("removing the Consul keys under %s: %v; retrying (to delete the resource without it: "+
			"kubectl patch postgresqlcluster %s -n %s --type=json -p '[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]')",
			ConsulKeyPrefix(c), err, c.Name, c.Namespace)
		r.setCleanupCondition(ctx, c, metav1.ConditionFalse, reason, msg)
		r.event(c, corev1.EventTypeWarning, reason, "Cleanup", msg)
		next := CleanupBackoff(waiting)
		logger.Info("Consul cleanup failed, retrying", "error", err.Error(), "retryIn", next.String())
		return ctrl.Result{RequeueAfter: next}, nil
	}
	r.event(c, corev1.EventTypeNormal, "ConsulKeysRemoved", "Cleanup", "removed the Consul keys under "+ConsulKeyPrefix(c))

	if c.Spec.Storage.DeleteClaimsOnDelete {
		if err := r.DeleteAllOf(ctx, &corev1.PersistentVolumeClaim{}, client.InNamespace(c.Namespace),
			client.MatchingLabels(selectorLabels(c))); err != nil {
			return ctrl.Result{}, fmt.Errorf("deleting the claims of %s: %w", c.Name, err)
		}
	}

	return r.removeFinalizer(ctx, c)
}

func (r *Reconciler) removeFinalizer(ctx context.Context, c *ramdv1.PostgreSQLCluster) (ctrl.Result, error) {
	r.pushedConfig.Delete(c.UID)
	patch := client.MergeFromWithOptions(c.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(c, FinalizerCleanup)
	if err := r.Patch(ctx, c, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("removing the finalizer of %s: %w", c.Name, err)
	}
	return ctrl.Result{}, nil
}

// namespaceTerminating reports whether the namespace is being deleted.
func (r *Reconciler) namespaceTerminating(ctx context.Context, name string) (bool, error) {
	var ns corev1.Namespace
	if err := r.Get(ctx, types.NamespacedName{Name: name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return ns.DeletionTimestamp != nil, nil
}

// stopMembers deletes the StatefulSet and the member pods (the garbage collector would only
// do it once the resource is gone, after the cleanup); it reports whether no pod is left.
func (r *Reconciler) stopMembers(ctx context.Context, c *ramdv1.PostgreSQLCluster) (bool, error) {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: stsName(c)}}
	if err := r.Delete(ctx, sts, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("deleting the StatefulSet of %s: %w", c.Name, err)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return false, fmt.Errorf("listing the pods of %s: %w", c.Name, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if err := r.Delete(ctx, p); err != nil && !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("deleting pod %s: %w", p.Name, err)
		}
	}
	return len(pods.Items) == 0, nil
}

func (r *Reconciler) setCleanupCondition(ctx context.Context, c *ramdv1.PostgreSQLCluster, status metav1.ConditionStatus, reason, msg string) {
	before := c.Status.DeepCopy()
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionConsulCleanup,
		Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	if equalStatus(before, &c.Status) {
		return
	}
	if err := r.Status().Update(ctx, c); err != nil && !apierrors.IsNotFound(err) {
		log.FromContext(ctx).V(1).Info("status of a deleted cluster not written", "error", err.Error())
	}
}

// event records an event on the cluster when the reconciler has a recorder.
func (r *Reconciler) event(c *ramdv1.PostgreSQLCluster, typ, reason, action, msg string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(c, nil, typ, reason, action, "%s", msg)
	}
}

// consulRefusedError is an answer of Consul other than success: an ACL denial, mostly.
type consulRefusedError struct {
	Code int
	Body string
}

func (e *consulRefusedError) Error() string {
	return fmt.Sprintf("consul answered %d: %s", e.Code, e.Body)
}

// consulEndpoint is the base URL, token and HTTP client of the cluster's Consul, from the
// spec: the address (or the node-local agent on the operator's node), the ACL token Secret
// and the TLS CA Secret.
func (r *Reconciler) consulEndpoint(ctx context.Context, c *ramdv1.PostgreSQLCluster) (string, string, *http.Client, error) {
	cs := c.Spec.Consul
	scheme := "http"
	if cs.TLS != nil {
		scheme = "https"
	}
	var base string
	switch {
	case cs.UseHostIP:
		if r.NodeIP == "" {
			return "", "", nil, errors.New("spec.consul.useHostIP is set but the operator does not know its node's IP (HOST_IP)")
		}
		port := cs.Port
		if port == 0 {
			port = 8500
		}
		base = scheme + "://" + net.JoinHostPort(r.NodeIP, strconv.Itoa(int(port)))
	case strings.Contains(cs.Address, "://"):
		base = strings.TrimSuffix(cs.Address, "/")
	default:
		base = scheme + "://" + cs.Address
	}
	var token string
	if sel := cs.ACLTokenSecret; sel != nil {
		var s corev1.Secret
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: sel.Name}, &s); err != nil {
			return "", "", nil, fmt.Errorf("reading the Consul ACL token Secret %s: %w", sel.Name, err)
		}
		token = strings.TrimSpace(string(s.Data[sel.Key]))
		if token == "" {
			return "", "", nil, fmt.Errorf("the Consul ACL token Secret %s has no key %s", sel.Name, sel.Key)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t := cs.TLS; t != nil {
		var s corev1.Secret
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: t.CASecret}, &s); err != nil {
			return "", "", nil, fmt.Errorf("reading the Consul CA Secret %s: %w", t.CASecret, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
			return "", "", nil, fmt.Errorf("the Consul CA Secret %s has no PEM certificate under ca.crt", t.CASecret)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	}
	return base, token, &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// deleteConsulKeys removes every key under the cluster's prefix (Consul's recursive KV
// delete; deleting nothing succeeds too).
func (r *Reconciler) deleteConsulKeys(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	base, token, hc, err := r.consulEndpoint(ctx, c)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	u := base + "/v1/kv/" + (&url.URL{Path: ConsulKeyPrefix(c)}).EscapedPath() + "?recurse=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return fmt.Errorf("building the delete of %s: %w", u, err)
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("DELETE %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return &consulRefusedError{Code: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	return nil
}
