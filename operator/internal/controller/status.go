package controller

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// ensureCredentials makes sure the Secret with the passwords exists: a Secret the spec
// names must exist with its keys; otherwise <cluster>-credentials is generated once, and a
// key missing from it is added without touching the others.
func (r *Reconciler) ensureCredentials(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	keys := []string{KeySuperuserPassword, KeyReplicationPassword, KeyAPIPassword}
	var s corev1.Secret
	err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: credentialsName(c)}, &s)
	if c.Spec.SuperuserSecret != "" {
		if err != nil {
			return fmt.Errorf("reading the credentials Secret %s named by spec.superuserSecret: %w", c.Spec.SuperuserSecret, err)
		}
		for _, k := range keys {
			if len(s.Data[k]) == 0 {
				return fmt.Errorf("the credentials Secret %s has no key %s", c.Spec.SuperuserSecret, k)
			}
		}
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the credentials Secret %s: %w", credentialsName(c), err)
	}
	created := apierrors.IsNotFound(err)
	if created {
		s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: credentialsName(c), Namespace: c.Namespace, Labels: commonLabels(c)},
			Type: corev1.SecretTypeOpaque}
		if err := controllerutil.SetControllerReference(c, &s, r.Scheme); err != nil {
			return fmt.Errorf("owning the credentials Secret: %w", err)
		}
	}
	changed := false
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	for _, k := range keys {
		if len(s.Data[k]) == 0 {
			pw, err := password()
			if err != nil {
				return err
			}
			s.Data[k] = []byte(pw)
			changed = true
		}
	}
	switch {
	case created:
		if err := r.Create(ctx, &s); err != nil {
			return fmt.Errorf("creating the credentials Secret %s: %w", s.Name, err)
		}
	case changed:
		if err := r.Update(ctx, &s); err != nil {
			return fmt.Errorf("completing the credentials Secret %s: %w", s.Name, err)
		}
	}
	return nil
}

// password is 24 random bytes, URL-safe base64 (32 characters, no quoting needed anywhere).
func password() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// phaseOf is the phase the StatefulSet alone tells.
func phaseOf(c *ramdv1.PostgreSQLCluster, sts *appsv1.StatefulSet) ramdv1.Phase {
	switch {
	case sts == nil:
		return ramdv1.PhasePending
	case sts.Status.ReadyReplicas == 0:
		return ramdv1.PhaseCreating
	case sts.Status.Replicas != c.Spec.Replicas:
		return ramdv1.PhaseScaling
	case sts.Status.ReadyReplicas < c.Spec.Replicas:
		return ramdv1.PhaseDegraded
	default:
		return ramdv1.PhaseRunning
	}
}

// observe fills the status from the StatefulSet and from ramd's API, labels the pods by
// the role ramd reports, and hands the spec's dynamic configuration to ramd when it changed.
func (r *Reconciler) observe(ctx context.Context, c *ramdv1.PostgreSQLCluster, applied *appsv1.StatefulSet) error {
	var sts *appsv1.StatefulSet
	if applied != nil {
		var cur appsv1.StatefulSet
		if err := r.Get(ctx, client.ObjectKeyFromObject(applied), &cur); err == nil {
			sts = &cur
			c.Status.Replicas = cur.Status.Replicas
			c.Status.ReadyReplicas = cur.Status.ReadyReplicas
		}
	}
	c.Status.Phase = phaseOf(c, sts)

	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return fmt.Errorf("listing the pods of %s: %w", c.Name, err)
	}
	st, err := r.Ramd.Status(ctx, pods.Items)
	if err != nil {
		reason, msg := "Unreachable", "no member's API answered: "+err.Error()
		if errors.Is(err, ErrNoMemberAddress) {
			reason, msg = "NoPodAddresses", "members are not reachable yet: no pod of the StatefulSet has an IP address"
		}
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionMembersReachable,
			Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionPrimaryAvailable,
			Status: metav1.ConditionUnknown, Reason: "MembersNotReachable", Message: "ramd's cluster status could not be read", ObservedGeneration: c.Generation})
		return err
	}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionMembersReachable,
		Status: metav1.ConditionTrue, Reason: "StatusRead", Message: "ramd's /api/v1/cluster answered", ObservedGeneration: c.Generation})
	fillFromRamd(c, st)
	if st.Leader == "" {
		c.Status.Phase = ramdv1.PhaseDegraded
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionPrimaryAvailable,
			Status: metav1.ConditionFalse, Reason: "NoLeader", Message: "no member holds ramd's leader lock", ObservedGeneration: c.Generation})
	} else {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionPrimaryAvailable,
			Status: metav1.ConditionTrue, Reason: "LeaderElected", Message: st.Leader + " holds the leader lock", ObservedGeneration: c.Generation})
	}
	if err := r.labelRoles(ctx, pods.Items, st); err != nil {
		return err
	}
	return r.pushConfig(ctx, c, pods.Items)
}

// fillFromRamd copies ramd's view of the members into the status.
func fillFromRamd(c *ramdv1.PostgreSQLCluster, st *ClusterStatus) {
	c.Status.Primary = st.Leader
	c.Status.Members = c.Status.Members[:0]
	for _, m := range st.Members {
		c.Status.Members = append(c.Status.Members, ramdv1.MemberStatus{
			Name: m.Name, Role: m.Role, State: m.State, LagBytes: m.LagBytes(),
			Timeline: m.Timeline, PendingRestart: m.PendingRestart,
		})
	}
	if b := st.Node.Backup; b != nil && !b.LastSuccess.IsZero() {
		t := metav1.NewTime(b.LastSuccess)
		c.Status.LastBackupTime = &t
	}
}

// RoleOf is the role label a member's pod gets: primary for the leader, replica for a
// member whose PostgreSQL runs (streaming or running), none otherwise, so a stopped or
// cloning member is in neither Service.
func RoleOf(st *ClusterStatus, name string) string {
	if name == st.Leader {
		return RolePrimary
	}
	for _, m := range st.Members {
		if m.Name == name && (m.State == "streaming" || m.State == "running") {
			return RoleReplica
		}
	}
	return ""
}

// labelRoles sets each pod's role label to what ramd reports. The primary's old pod loses
// its label in the same pass the new one gets it.
func (r *Reconciler) labelRoles(ctx context.Context, pods []corev1.Pod, st *ClusterStatus) error {
	for i := range pods {
		p := &pods[i]
		want := RoleOf(st, p.Name)
		if p.Labels[LabelRole] == want {
			continue
		}
		patch := client.MergeFrom(p.DeepCopy())
		if want == "" {
			delete(p.Labels, LabelRole)
		} else {
			if p.Labels == nil {
				p.Labels = map[string]string{}
			}
			p.Labels[LabelRole] = want
		}
		if err := r.Patch(ctx, p, patch); err != nil {
			return fmt.Errorf("labelling pod %s as %q: %w", p.Name, want, err)
		}
	}
	return nil
}

// pushConfig merges the spec's dynamic configuration into ramd's when it changed since
// ramd last accepted it. A refusal (ramd's validation) shows in the condition with ramd's
// field-level message; nothing changes in the cluster then.
func (r *Reconciler) pushConfig(ctx context.Context, c *ramdv1.PostgreSQLCluster, pods []corev1.Pod) error {
	doc, err := DynamicConfig(c)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding the dynamic configuration: %w", err)
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:8])
	if hash == c.Status.ConfigHash {
		return nil
	}
	// A pass that read the resource from the cache before the status of the pass that
	// pushed this configuration arrived would push it again: remember what ramd took.
	if v, ok := r.pushedConfig.Load(c.UID); ok && v == hash {
		c.Status.ConfigHash = hash
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionConfigurationAccepted,
			Status: metav1.ConditionTrue, Reason: "Applied", Message: "ramd accepted the dynamic configuration of the spec", ObservedGeneration: c.Generation})
		return nil
	}
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: credentialsName(c)}, &s); err != nil {
		return fmt.Errorf("reading the API password: %w", err)
	}
	err = r.Ramd.PatchConfig(ctx, pods, apiUser, string(s.Data[KeyAPIPassword]), doc)
	var refused *ConfigRefusedError
	switch {
	case errors.As(err, &refused):
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionConfigurationAccepted,
			Status: metav1.ConditionFalse, Reason: "Refused", Message: refused.Body, ObservedGeneration: c.Generation})
		return nil
	case err != nil:
		return err
	}
	c.Status.ConfigHash = hash
	r.pushedConfig.Store(c.UID, hash)
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionConfigurationAccepted,
		Status: metav1.ConditionTrue, Reason: "Applied", Message: "ramd accepted the dynamic configuration of the spec", ObservedGeneration: c.Generation})
	return nil
}
