package controller

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// ConditionScaleDown tells whether a scale-down reached the StatefulSet: False while the
// operator holds it because the primary is among the pods to go (it switches over first)
// or its place is unknown, True once the StatefulSet has the spec's replicas.
const ConditionScaleDown = "ScaleDown"

// scaleDownStep is what one pass does about a scale-down.
type scaleDownStep struct {
	// Replicas is what the StatefulSet gets in this pass.
	Replicas int32
	// SwitchTo is the member to switch over to before the scale-down ("" for none).
	SwitchTo string
	// Waiting says why the scale-down is held ("" when it goes ahead).
	Waiting string
}

// memberOrdinal is the StatefulSet ordinal of member name (<sts>-<n>), -1 for another name.
func memberOrdinal(sts, name string) int {
	rest, ok := strings.CutPrefix(name, sts+"-")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return -1
	}
	return n
}

// planScaleDown decides a pass of a scale-down from current to desired replicas. A
// StatefulSet removes its highest ordinals, so when the primary's ordinal is at or above
// desired it is held at current and a switchover to a member that stays comes first: a
// streaming one before one that only runs (ramd prefers a candidate that streams), then the
// least lag, then the lowest ordinal. st is
// ramd's cluster status, nil when it could not be read (then it is held too: where the
// primary is is unknown).
func planScaleDown(sts string, current, desired int32, st *ClusterStatus) scaleDownStep {
	if desired >= current {
		return scaleDownStep{Replicas: desired}
	}
	hold := func(why string) scaleDownStep { return scaleDownStep{Replicas: current, Waiting: why} }
	switch {
	case st == nil:
		return hold("ramd's cluster status could not be read, so the primary may be among the pods to remove")
	case st.Leader == "":
		return hold("no member holds the leader lock; the scale-down waits for a primary")
	}
	if o := memberOrdinal(sts, st.Leader); o < int(desired) {
		return scaleDownStep{Replicas: desired}
	}
	type rank struct {
		notStreaming bool
		lag          int64
		ord          int
	}
	less := func(a, b rank) bool {
		if a.notStreaming != b.notStreaming {
			return !a.notStreaming
		}
		if a.lag != b.lag {
			return a.lag < b.lag
		}
		return a.ord < b.ord
	}
	best, bestRank := "", rank{true, math.MaxInt64, math.MaxInt}
	for _, m := range st.Members {
		o := memberOrdinal(sts, m.Name)
		if o < 0 || o >= int(desired) || (m.State != "streaming" && m.State != "running") {
			continue
		}
		r := rank{notStreaming: m.State != "streaming", lag: math.MaxInt64 - 1, ord: o} // unknown lag: after every known one
		if l := m.LagBytes(); l != nil {
			r.lag = *l
		}
		if best == "" || less(r, bestRank) {
			best, bestRank = m.Name, r
		}
	}
	if best == "" {
		return hold(fmt.Sprintf("the primary %s is among the pods to remove and no member that stays is running to take over", st.Leader))
	}
	step := hold(fmt.Sprintf("the primary %s is among the pods to remove: switching over to %s first", st.Leader, best))
	step.SwitchTo = best
	return step
}

// holdScaleDown sets want's replicas for this pass: a scale-down that would remove the
// primary keeps the current count until a switchover (requested here, followed like one
// requested through the annotation) moved the primary to a member that stays.
func (r *Reconciler) holdScaleDown(ctx context.Context, c *ramdv1.PostgreSQLCluster, want *appsv1.StatefulSet) error {
	var cur appsv1.StatefulSet
	err := r.Get(ctx, client.ObjectKeyFromObject(want), &cur)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the StatefulSet %s: %w", want.Name, err)
	}
	current, desired := int32(1), c.Spec.Replicas
	if cur.Spec.Replicas != nil {
		current = *cur.Spec.Replicas
	}
	if desired >= current {
		// A held scale-down that went through: said here too, in case the status of the
		// pass that lowered the replicas was not written (a conflict).
		if cond := meta.FindStatusCondition(c.Status.Conditions, ConditionScaleDown); cond != nil && cond.Status != metav1.ConditionTrue {
			meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionScaleDown, Status: metav1.ConditionTrue,
				Reason: "Applied", Message: fmt.Sprintf("the StatefulSet has the spec's %d replicas", current), ObservedGeneration: c.Generation})
		}
		return nil
	}
	pods, err := r.memberPods(ctx, c)
	if err != nil {
		return err
	}
	st, statusErr := r.Ramd.Status(ctx, pods)
	if statusErr != nil {
		st = nil
	}
	step := planScaleDown(want.Name, current, desired, st)
	if step.Waiting == "" && st != nil {
		step = r.confirmLeader(ctx, pods, st.Leader, current, step)
	}
	want.Spec.Replicas = &step.Replicas
	cond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionScaleDown,
			Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	}
	if step.Waiting == "" {
		msg := fmt.Sprintf("scaled down from %d to %d members; the primary %s stays", current, desired, st.Leader)
		cond(metav1.ConditionTrue, "Applied", msg)
		r.event(c, corev1.EventTypeNormal, "ScaledDown", "ScaleDown", msg)
		return nil
	}
	if step.SwitchTo == "" || c.Annotations[AnnotationSwitchoverJob] != "" {
		// Nothing to ask, or a switchover under way (followed by switchoverOnRequest).
		cond(metav1.ConditionFalse, "Waiting", step.Waiting)
		return nil
	}
	pw, err := r.apiPassword(ctx, c)
	if err != nil {
		return err
	}
	id, err := r.Ramd.Switchover(ctx, pods, apiUser, pw, st.Leader, step.SwitchTo)
	if err != nil {
		msg := fmt.Sprintf("scale-down to %d held: the switchover from %s to %s was not taken: %v", desired, st.Leader, step.SwitchTo, err)
		cond(metav1.ConditionFalse, "SwitchoverNotTaken", msg)
		r.event(c, corev1.EventTypeWarning, "ScaleDownHeld", "ScaleDown", msg)
		return nil // asked again at the next pass
	}
	msg := fmt.Sprintf("scale-down to %d: ramd switches over from %s to %s first (job %s)", desired, st.Leader, step.SwitchTo, id)
	cond(metav1.ConditionFalse, "SwitchingOver", msg)
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionSwitchover,
		Status: metav1.ConditionUnknown, Reason: "InProgress", Message: msg, ObservedGeneration: c.Generation})
	r.event(c, corev1.EventTypeNormal, "SwitchoverRequested", "ScaleDown", msg)
	return r.setAnnotations(ctx, c, map[string]string{AnnotationSwitchoverJob: id})
}

// confirmLeader holds a scale-down that would go ahead unless the primary's own API says it
// holds the leader lock: the member that answered the cluster's status may have an older
// view (a switchover that just moved the primary to a pod about to go). Only one member
// holds the lock, so the confirmation of one that stays means none of those to go does.
func (r *Reconciler) confirmLeader(ctx context.Context, pods []corev1.Pod, leader string, current int32, step scaleDownStep) scaleDownStep {
	for _, p := range pods {
		if p.Name != leader {
			continue
		}
		own, err := r.Ramd.Status(ctx, []corev1.Pod{p})
		if err == nil && own.Leader == leader {
			return step
		}
		why := fmt.Sprintf("the primary %s did not confirm it holds the leader lock", leader)
		if err != nil {
			why += ": " + err.Error()
		}
		return scaleDownStep{Replicas: current, Waiting: why}
	}
	return step // not a pod of the StatefulSet: the scale-down cannot remove it
}
