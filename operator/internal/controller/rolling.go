package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// A rolling update replaces the pods whose template is older than the StatefulSet's (the
// StatefulSet uses OnDelete, so only a deleted pod is made anew): the replicas one at a
// time, each only when every other member is ready, then a switchover to an updated ready
// replica, then the old primary. The pod template carries AnnotationTemplateHash, so each
// pod says which template it was made from; a pod without it (made before the operator
// stamped templates) is left alone.

// RollStep is what the rolling update does next.
type RollStep string

// Steps of a rolling update.
const (
	// RollDone: every member runs the StatefulSet's template.
	RollDone RollStep = "Done"
	// RollWait: a member is missing, terminating or not ready, or a switchover is under way.
	RollWait RollStep = "Wait"
	// RollDeleteReplica: delete an out-of-date replica's pod.
	RollDeleteReplica RollStep = "DeleteReplica"
	// RollSwitchover: ask ramd to hand the primary over to an updated replica.
	RollSwitchover RollStep = "Switchover"
	// RollDeletePrimary: delete the out-of-date primary (a single member: no one to hand over to).
	RollDeletePrimary RollStep = "DeletePrimary"
)

// RollMember is one member pod as the rolling update sees it.
type RollMember struct {
	Name string
	// Current: the pod was made from the StatefulSet's template.
	Current bool
	// Ready: the pod's Ready condition is true.
	Ready bool
	// Terminating: the pod is being deleted.
	Terminating bool
}

// RollPlan is the next step, the pod it acts on (Target), the switchover candidate, and a
// sentence for the condition.
type RollPlan struct {
	Step      RollStep
	Target    string
	Candidate string
	Reason    string
	// Updated of Total members run the StatefulSet's template.
	Updated, Total int
	// Settled (with RollDone): every member exists and is ready. A rollout is complete
	// when its last replacement is ready, not when it was made.
	Settled bool
}

// PlanRoll decides the next step of a rolling update from the member pods, the number of
// members the StatefulSet should have, ramd's leader ("" when unknown) and whether a
// switchover asked for by the rolling update is still under way. It is pure: the
// reconciler calls it on every pass and does the one step it returns.
func PlanRoll(members []RollMember, replicas int, primary string, switchoverPending bool) RollPlan {
	ms := append([]RollMember(nil), members...)
	// Highest ordinal first, as the StatefulSet controller does.
	sort.Slice(ms, func(i, j int) bool { return ordinalLess(ms[j].Name, ms[i].Name) })
	plan := RollPlan{Total: max(len(ms), replicas)}
	var outdated []RollMember
	for _, m := range ms {
		if m.Current {
			plan.Updated++
		} else {
			outdated = append(outdated, m)
		}
	}
	if len(outdated) == 0 {
		plan.Step, plan.Reason = RollDone, fmt.Sprintf("all %d members run the current pod template", len(ms))
		plan.Settled = len(ms) >= replicas
		for _, m := range ms {
			if !m.Ready || m.Terminating {
				plan.Settled = false
				plan.Reason = "all members run the current pod template; waiting for pod " + m.Name + " to be ready"
				break
			}
		}
		if len(ms) < replicas && !plan.Settled && !strings.Contains(plan.Reason, "waiting") {
			plan.Reason = fmt.Sprintf("all members run the current pod template; waiting for %d of %d member pods to exist", len(ms), replicas)
		}
		return plan
	}
	wait := func(why string) RollPlan {
		plan.Step, plan.Reason = RollWait, why
		return plan
	}
	for _, m := range ms {
		if m.Terminating {
			return wait("waiting for pod " + m.Name + " to terminate")
		}
	}
	if len(ms) < replicas {
		return wait(fmt.Sprintf("waiting for %d of %d member pods to exist", len(ms), replicas))
	}
	if primary == "" {
		return wait("waiting for ramd to report a primary")
	}
	if switchoverPending {
		return wait("waiting for the switchover away from " + primary)
	}
	notReady := func(except string) string {
		for _, m := range ms {
			if m.Name != except && !m.Ready {
				return m.Name
			}
		}
		return ""
	}
	// An updated member that is not ready yet (the last replacement coming up, or a new
	// template that does not start) holds the rollout.
	for _, m := range ms {
		if m.Current && !m.Ready {
			return wait("waiting for the updated pod " + m.Name + " to be ready")
		}
	}
	// Replicas first. An out-of-date replica that is not ready goes first: deleting it
	// takes nothing away (a fixed image replaces pods a broken one left unready that way).
	for _, m := range outdated {
		if m.Name != primary && !m.Ready {
			plan.Step, plan.Target = RollDeleteReplica, m.Name
			plan.Reason = "replacing replica " + m.Name + " (not ready, out of date)"
			return plan
		}
	}
	for _, m := range outdated {
		if m.Name == primary {
			continue
		}
		if other := notReady(""); other != "" {
			return wait("waiting for pod " + other + " to be ready before replacing " + m.Name)
		}
		plan.Step, plan.Target = RollDeleteReplica, m.Name
		plan.Reason = "replacing replica " + m.Name
		return plan
	}
	// Only the primary is left.
	if other := notReady(primary); other != "" {
		return wait("waiting for pod " + other + " to be ready before the switchover")
	}
	if len(ms) == 1 {
		plan.Step, plan.Target = RollDeletePrimary, primary
		plan.Reason = "replacing the only member " + primary + " (no replica to hand over to)"
		return plan
	}
	for _, m := range ms {
		if m.Name != primary && m.Current && m.Ready {
			plan.Step, plan.Target, plan.Candidate = RollSwitchover, primary, m.Name
			plan.Reason = "switching over from " + primary + " to the updated replica " + m.Name
			return plan
		}
	}
	return wait("no updated ready replica to switch over to")
}

// ordinalLess orders pod names by their StatefulSet ordinal (name-<n>), then by name.
func ordinalLess(a, b string) bool {
	oa, oka := ordinal(a)
	ob, okb := ordinal(b)
	if oka && okb && oa != ob {
		return oa < ob
	}
	return a < b
}

func ordinal(name string) (int, bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(name[i+1:])
	return n, err == nil
}

// switchoverWait is how long a switchover the rolling update asked for counts as under
// way: no second one is asked for meanwhile unless the primary changed.
const switchoverWait = 60 * time.Second

// pendingSwitchovers remembers the switchovers the rolling update asked for, per cluster.
type pendingSwitchovers struct {
	mu sync.Mutex
	m  map[types.NamespacedName]pendingSwitchover
}

type pendingSwitchover struct {
	from string
	at   time.Time
}

// pending reports whether a switchover away from primary was asked for within switchoverWait.
func (p *pendingSwitchovers) pending(key types.NamespacedName, primary string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.m[key]
	if !ok {
		return false
	}
	if s.from != primary || now.Sub(s.at) > switchoverWait {
		delete(p.m, key)
		return false
	}
	return true
}

func (p *pendingSwitchovers) record(key types.NamespacedName, from string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[types.NamespacedName]pendingSwitchover{}
	}
	p.m[key] = pendingSwitchover{from: from, at: now}
}

// RollingSwitchover asks ramd for a switchover (POST /api/v1/switchover, a job): the
// rolling update's last step before the old primary's pod is deleted.
type RollingSwitchover interface {
	RollingSwitchover(ctx context.Context, pods []corev1.Pod, user, password, leader, candidate string) error
}

// RollingSwitchover implements RollingSwitchover: the first member that answers takes it.
func (h *HTTPRamdClient) RollingSwitchover(ctx context.Context, pods []corev1.Pod, user, password, leader, candidate string) error {
	_, err := h.Switchover(ctx, pods, user, password, leader, candidate)
	return err
}

// podReady reports the pod's Ready condition.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// roll does one step of the rolling update of c's pods to the StatefulSet's template and
// reports it in the RollingUpdate condition. It does nothing while ramd's view of the
// cluster could not be read in this pass.
func (r *Reconciler) roll(ctx context.Context, c *ramdv1.PostgreSQLCluster, sts *appsv1.StatefulSet) error {
	if sts == nil {
		return nil
	}
	want := sts.Annotations[AnnotationTemplateHash]
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return fmt.Errorf("listing the pods of %s: %w", c.Name, err)
	}
	var members []RollMember
	byName := map[string]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		have, stamped := p.Annotations[AnnotationTemplateHash]
		if !stamped {
			// Made before templates were stamped: its revision is unknown, leave it.
			continue
		}
		byName[p.Name] = p
		members = append(members, RollMember{Name: p.Name, Current: have == want, Ready: podReady(p), Terminating: p.DeletionTimestamp != nil})
	}
	if len(members) == 0 {
		return nil
	}
	primary := ""
	if meta.IsStatusConditionTrue(c.Status.Conditions, ramdv1.ConditionMembersReachable) {
		primary = c.Status.Primary
	}
	key := client.ObjectKeyFromObject(c)
	now := time.Now()
	plan := PlanRoll(members, int(c.Spec.Replicas), primary, r.switchovers.pending(key, primary, now))
	setCond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ramdv1.ConditionRollingUpdate,
			Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	}
	progress := fmt.Sprintf(" (%d of %d members updated)", plan.Updated, plan.Total)
	logger := log.FromContext(ctx)
	switch plan.Step {
	case RollDone:
		// A rollout under way ends when its last replacement is ready; with nothing under
		// way, an unready member is not a rollout's business.
		if !plan.Settled && meta.IsStatusConditionTrue(c.Status.Conditions, ramdv1.ConditionRollingUpdate) {
			setCond(metav1.ConditionTrue, "Waiting", plan.Reason+progress)
			return nil
		}
		setCond(metav1.ConditionFalse, "Complete", fmt.Sprintf("all %d members run the current pod template", plan.Updated))
		return nil
	case RollWait:
		setCond(metav1.ConditionTrue, "Waiting", plan.Reason+progress)
		return nil
	case RollDeleteReplica, RollDeletePrimary:
		p := byName[plan.Target]
		logger.Info("rolling update: deleting pod", "pod", p.Name, "step", string(plan.Step))
		err := r.Delete(ctx, p, client.Preconditions{UID: &p.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("rolling update: deleting pod %s: %w", p.Name, err)
		}
		reason := "DeletingReplica"
		if plan.Step == RollDeletePrimary {
			reason = "DeletingPrimary"
		}
		setCond(metav1.ConditionTrue, reason, plan.Reason+progress)
		r.event(c, corev1.EventTypeNormal, reason, "RollingUpdate", plan.Reason)
		return nil
	case RollSwitchover:
		var s corev1.Secret
		if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: credentialsName(c)}, &s); err != nil {
			return fmt.Errorf("reading the API password: %w", err)
		}
		sw := r.Switchover
		if sw == nil {
			sw, _ = r.Ramd.(RollingSwitchover)
		}
		if sw == nil {
			return errors.New("rolling update: no switchover client")
		}
		if err := sw.RollingSwitchover(ctx, pods.Items, apiUser, string(s.Data[KeyAPIPassword]), plan.Target, plan.Candidate); err != nil {
			setCond(metav1.ConditionTrue, "SwitchoverFailed", plan.Reason+": "+err.Error()+progress)
			return fmt.Errorf("rolling update: %w", err)
		}
		r.switchovers.record(key, plan.Target, now)
		logger.Info("rolling update: switchover requested", "from", plan.Target, "to", plan.Candidate)
		setCond(metav1.ConditionTrue, "Switchover", plan.Reason+progress)
		r.event(c, corev1.EventTypeNormal, "Switchover", "RollingUpdate", plan.Reason)
		return nil
	}
	return nil
}
