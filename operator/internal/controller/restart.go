package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// A parameter change that needs a restart (shared_buffers, max_connections, ...) reaches
// ramd's dynamic configuration, not the pod template, so it rolls no pod: ramd applies it at
// the members' next restart and lists them as waiting (pending_restart). With
// spec.postgresql.restartPolicy Rolling (the default) the operator asks ramd for one rolling
// restart of those members (POST /api/v1/restart with restart_pending: replicas one at a
// time, then a switchover and the old primary), keeps the job's id in AnnotationRestartJob,
// follows the job and reports it in ConditionPendingRestart.
const (
	AnnotationRestartJob = "ramd.io/restart-job"
	// ConditionPendingRestart is True while members wait for a restart (the reason says
	// why they still wait, or that ramd restarts them), False when none does.
	ConditionPendingRestart = "PendingRestart"
	// restartSettle is how long after a rolling restart the operator asks for no other:
	// ramd's status shows the restarted members as done within a loop or two.
	restartSettle = time.Minute
	// restartRetry is how long after a failed rolling restart it asks again.
	restartRetry = 10 * time.Minute
)

// restartInput is what a pass knows about pending restarts.
type restartInput struct {
	Policy  string   // spec.postgresql.restartPolicy
	Pending []string // members ramd reports as waiting for a restart
	Leader  string   // status.primary
	Job     string   // AnnotationRestartJob
	// Busy names another operation under way (a switchover, a rolling update of the pods,
	// a scale-down), which a rolling restart must not overlap; empty when none.
	Busy string
	// LastEnd is when the last rolling restart ended (zero when none did), LastFailed
	// whether it failed.
	LastEnd    time.Time
	LastFailed bool
	Now        time.Time
}

// restartAction is what a pass does.
type restartAction int

const (
	restartNone    restartAction = iota // nothing waits
	restartFollow                       // a job runs: read it
	restartRequest                      // ask ramd for a rolling restart
	restartHold                         // members wait, but not for this pass (the reason says why)
)

// planRestart decides a pass from in. Pure.
func planRestart(in restartInput) (restartAction, string) {
	switch {
	case in.Job != "":
		return restartFollow, "ramd restarts the members (job " + in.Job + ")"
	case len(in.Pending) == 0:
		return restartNone, "no member waits for a restart"
	}
	waiting := strings.Join(in.Pending, ", ")
	switch {
	case in.Policy == ramdv1.RestartManual:
		return restartHold, waiting + " wait for a restart (restartPolicy Manual: ramctrl restart --pending)"
	case in.Leader == "":
		return restartHold, waiting + " wait for a restart; no member holds the leader lock"
	case in.Busy != "":
		return restartHold, waiting + " wait for a restart until " + in.Busy + " ends"
	case in.LastFailed && in.Now.Sub(in.LastEnd) < restartRetry:
		return restartHold, fmt.Sprintf("%s wait for a restart; the last rolling restart failed, next try at %s",
			waiting, in.LastEnd.Add(restartRetry).UTC().Format(time.RFC3339))
	case !in.LastEnd.IsZero() && in.Now.Sub(in.LastEnd) < restartSettle:
		return restartHold, waiting + " wait for a restart; a rolling restart just ended"
	}
	return restartRequest, waiting + " wait for a restart: asking ramd for a rolling restart"
}

// restartMemory remembers, per cluster, when its last rolling restart ended.
type restartMemory struct {
	mu  sync.Mutex
	end map[types.UID]restartEnd
}

type restartEnd struct {
	at     time.Time
	failed bool
}

func (m *restartMemory) get(uid types.UID) restartEnd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.end[uid]
}

func (m *restartMemory) set(uid types.UID, e restartEnd) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.end == nil {
		m.end = map[types.UID]restartEnd{}
	}
	m.end[uid] = e
}

// busyWith names another operation on the cluster under way, or "".
func busyWith(c *ramdv1.PostgreSQLCluster) string {
	switch {
	case c.Annotations[AnnotationSwitchoverTo] != "" || c.Annotations[AnnotationSwitchoverJob] != "":
		return "the requested switchover"
	case meta.IsStatusConditionTrue(c.Status.Conditions, ramdv1.ConditionRollingUpdate):
		return "the rolling update of the pods"
	}
	if sd := meta.FindStatusCondition(c.Status.Conditions, ConditionScaleDown); sd != nil && sd.Status == metav1.ConditionFalse {
		return "the scale-down"
	}
	return ""
}

// restartPending carries out spec.postgresql.restartPolicy for the members c's status lists
// as waiting for a restart. It changes the status in c (the caller writes it) and the job
// annotation on the API server.
func (r *Reconciler) restartPending(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	var pending []string
	for _, m := range c.Status.Members {
		if m.PendingRestart {
			pending = append(pending, m.Name)
		}
	}
	last := r.restarts.get(c.UID)
	action, why := planRestart(restartInput{Policy: c.Spec.PostgreSQL.RestartPolicy, Pending: pending,
		Leader: c.Status.Primary, Job: c.Annotations[AnnotationRestartJob], Busy: busyWith(c),
		LastEnd: last.at, LastFailed: last.failed, Now: time.Now()})
	cond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionPendingRestart,
			Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	}
	switch action {
	case restartNone:
		cond(metav1.ConditionFalse, "None", why)
		return nil
	case restartHold:
		if cur := meta.FindStatusCondition(c.Status.Conditions, ConditionPendingRestart); cur == nil || cur.Reason != "Failed" || !last.failed {
			reason := "Waiting"
			if c.Spec.PostgreSQL.RestartPolicy == ramdv1.RestartManual {
				reason = "Manual"
			}
			cond(metav1.ConditionTrue, reason, why)
		}
		return nil
	case restartFollow:
		return r.followRestart(ctx, c, c.Annotations[AnnotationRestartJob], cond)
	}
	pods, err := r.memberPods(ctx, c)
	if err != nil {
		return err
	}
	pw, err := r.apiPassword(ctx, c)
	if err != nil {
		return err
	}
	id, err := r.Ramd.RollingRestart(ctx, pods, apiUser, pw)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("ramd restarts %s, primary last (job %s)", strings.Join(pending, ", "), id)
	cond(metav1.ConditionTrue, "RollingRestart", msg)
	r.event(c, corev1.EventTypeNormal, "RollingRestart", "Restart", msg)
	return r.setAnnotations(ctx, c, map[string]string{AnnotationRestartJob: id})
}

// followRestart reads the rolling restart's job and, once it ended, reports the outcome and
// removes the annotation.
func (r *Reconciler) followRestart(ctx context.Context, c *ramdv1.PostgreSQLCluster, id string,
	cond func(metav1.ConditionStatus, string, string)) error {
	pods, err := r.memberPods(ctx, c)
	if err != nil {
		return err
	}
	j, err := r.Ramd.Job(ctx, pods, id)
	switch {
	case errors.Is(err, ErrJobNotFound):
		r.restarts.set(c.UID, restartEnd{at: time.Now(), failed: true})
		msg := fmt.Sprintf("ramd no longer knows rolling restart job %s; its outcome is unknown", id)
		cond(metav1.ConditionTrue, "Failed", msg)
		r.event(c, corev1.EventTypeWarning, "RestartUnknown", "Restart", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationRestartJob)
	case err != nil:
		return err
	case j.State == JobSucceeded:
		r.restarts.set(c.UID, restartEnd{at: time.Now()})
		msg := fmt.Sprintf("rolling restart done (job %s)", id)
		cond(metav1.ConditionFalse, "Restarted", msg)
		r.event(c, corev1.EventTypeNormal, "Restarted", "Restart", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationRestartJob)
	case j.State == JobFailed:
		r.restarts.set(c.UID, restartEnd{at: time.Now(), failed: true})
		msg := fmt.Sprintf("the rolling restart failed: %s (job %s); next try in %s", j.Error, id, restartRetry)
		cond(metav1.ConditionTrue, "Failed", msg)
		r.event(c, corev1.EventTypeWarning, "RestartFailed", "Restart", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationRestartJob)
	}
	cond(metav1.ConditionTrue, "RollingRestart", fmt.Sprintf("ramd restarts the members, primary last (job %s, %s)", id, j.State))
	return nil
}

// RollingRestart implements RamdClient: the first member that answers takes the request.
func (h *HTTPRamdClient) RollingRestart(ctx context.Context, pods []corev1.Pod, user, password string) (string, error) {
	return h.postJob(ctx, h.addresses(pods), "/api/v1/restart", []byte(`{"restart_pending":true}`), user, password,
		func(int, []byte) error { return nil })
}
