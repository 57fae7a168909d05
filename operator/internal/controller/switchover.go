package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ramdv1 "github.com/ramd-project/ramd/operator/api/v1alpha1"
)

// A switchover is requested through an annotation of the PostgreSQLCluster:
//
//	kubectl annotate pgc/pg-main ramd.io/switchover-to=pg-main-1   # or "any" (or empty)
//
// The operator asks ramd once (POST /api/v1/switchover on the leader's pod), replaces the
// request with the job's id (AnnotationSwitchoverJob), follows the job on later passes, and
// removes that annotation when the job ended. The outcome is the Switchover condition and
// an event.
const (
	AnnotationSwitchoverTo  = "ramd.io/switchover-to"
	AnnotationSwitchoverJob = "ramd.io/switchover-job"
	// ConditionSwitchover is the last switchover requested through the resource: Unknown
	// while ramd runs it, True when it succeeded (or nothing was to be done), False when it
	// was refused or failed.
	ConditionSwitchover = "Switchover"
	// switchoverAny is the annotation value for "any eligible member".
	switchoverAny = "any"
)

// Job is the part of one of ramd's jobs (GET /api/v1/jobs/{id}) the operator reads.
type Job struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	From  string `json:"from"`
	To    string `json:"to"`
	State string `json:"state"`
	Error string `json:"error"`
}

// States of a Job.
const (
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// ErrJobNotFound means no member knows the job (ramd answered 404).
var ErrJobNotFound = errors.New("ramd knows no such job")

// SwitchoverRefusedError is ramd's refusal of a switchover request (4xx): nothing changed.
type SwitchoverRefusedError struct {
	Code int
	Body string
}

func (e *SwitchoverRefusedError) Error() string {
	return fmt.Sprintf("ramd refused the switchover (%d): %s", e.Code, e.Body)
}

// Switchover implements RamdClient. The leader's pod is asked first; a member that cannot
// be reached is skipped, a refusal is final.
func (h *HTTPRamdClient) Switchover(ctx context.Context, pods []corev1.Pod, user, password, leader, candidate string) (string, error) {
	body, err := json.Marshal(map[string]string{"leader": leader, "candidate": candidate})
	if err != nil {
		return "", fmt.Errorf("encoding the switchover request: %w", err)
	}
	ordered := slices.Clone(pods)
	slices.SortStableFunc(ordered, func(a, b corev1.Pod) int {
		switch {
		case a.Name == leader && b.Name != leader:
			return -1
		case b.Name == leader && a.Name != leader:
			return 1
		}
		return 0
	})
	return h.postJob(ctx, h.addresses(ordered), "/api/v1/switchover", body, user, password,
		func(code int, raw []byte) error {
			if code == http.StatusUnauthorized || code/100 == 5 {
				return nil // another member may take it
			}
			return &SwitchoverRefusedError{Code: code, Body: strings.TrimSpace(string(raw))}
		})
}

// postJob posts body to path on each address in turn until a member accepts (200 or 202)
// and returns the id of the job it started. A member that cannot be reached is skipped; for
// any other answer final says whether it ends the round (its error) or the next member is
// asked (nil).
func (h *HTTPRamdClient) postJob(ctx context.Context, addrs []string, path string, body []byte, user, password string,
	final func(code int, raw []byte) error) (string, error) {
	if len(addrs) == 0 {
		return "", ErrNoMemberAddress
	}
	var errs []error
	for _, a := range addrs {
		raw, code, err := h.do(ctx, http.MethodPost, "http://"+a+path, body, user, password)
		switch {
		case err != nil:
			errs = append(errs, err)
		case code == http.StatusAccepted || code == http.StatusOK:
			var ans struct {
				JobID string `json:"job_id"`
				ID    string `json:"id"`
			}
			if err := json.Unmarshal(raw, &ans); err != nil {
				return "", fmt.Errorf("decoding the answer of %s to POST %s: %w", a, path, err)
			}
			if ans.JobID == "" {
				ans.JobID = ans.ID
			}
			if ans.JobID == "" {
				return "", fmt.Errorf("the answer of %s to POST %s names no job: %q", a, path, raw)
			}
			return ans.JobID, nil
		default:
			if err := final(code, raw); err != nil {
				return "", err
			}
			errs = append(errs, fmt.Errorf("POST %s on %s: status %d: %s", path, a, code, strings.TrimSpace(string(raw))))
		}
	}
	return "", fmt.Errorf("no member took POST %s: %w", path, errors.Join(errs...))
}

// Job implements RamdClient.
func (h *HTTPRamdClient) Job(ctx context.Context, pods []corev1.Pod, id string) (*Job, error) {
	addrs := h.addresses(pods)
	if len(addrs) == 0 {
		return nil, ErrNoMemberAddress
	}
	var errs []error
	notFound := 0
	for _, a := range addrs {
		raw, code, err := h.do(ctx, http.MethodGet, "http://"+a+"/api/v1/jobs/"+url.PathEscape(id), nil, "", "")
		switch {
		case err != nil:
			errs = append(errs, err)
		case code == http.StatusNotFound:
			notFound++
		case code == http.StatusOK:
			var j Job
			if err := json.Unmarshal(raw, &j); err != nil {
				return nil, fmt.Errorf("decoding job %s from %s: %w", id, a, err)
			}
			return &j, nil
		default:
			errs = append(errs, fmt.Errorf("GET /api/v1/jobs/%s on %s: status %d", id, a, code))
		}
	}
	if notFound > 0 && len(errs) == 0 {
		return nil, fmt.Errorf("job %s: %w", id, ErrJobNotFound)
	}
	return nil, fmt.Errorf("no member answered for job %s: %w", id, errors.Join(errs...))
}

// memberPods lists the pods of the cluster.
func (r *Reconciler) memberPods(ctx context.Context, c *ramdv1.PostgreSQLCluster) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(c.Namespace), client.MatchingLabels(selectorLabels(c))); err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", c.Name, err)
	}
	return pods.Items, nil
}

// apiPassword is the generated (or the user's) password of ramd's API.
func (r *Reconciler) apiPassword(ctx context.Context, c *ramdv1.PostgreSQLCluster) (string, error) {
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: credentialsName(c)}, &s); err != nil {
		return "", fmt.Errorf("reading the API password: %w", err)
	}
	return string(s.Data[KeyAPIPassword]), nil
}

// switchoverOnRequest carries out the switchover the annotation asks for, or follows the
// one under way. It changes the status in c (the caller writes it) and the annotations on
// the API server. An error leaves the annotations, so the next pass tries again.
func (r *Reconciler) switchoverOnRequest(ctx context.Context, c *ramdv1.PostgreSQLCluster) error {
	target, requested := c.Annotations[AnnotationSwitchoverTo]
	jobID := c.Annotations[AnnotationSwitchoverJob]
	if !requested && jobID == "" {
		return nil
	}
	pods, err := r.memberPods(ctx, c)
	if err != nil {
		return err
	}
	if jobID != "" {
		// One switchover at a time: a new request waits for the job under way to end.
		return r.followSwitchover(ctx, c, pods, jobID)
	}
	st, err := r.Ramd.Status(ctx, pods)
	if err != nil {
		return fmt.Errorf("reading the cluster for the requested switchover: %w", err)
	}
	candidate := strings.TrimSpace(target)
	if candidate == switchoverAny {
		candidate = ""
	}
	cond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionSwitchover,
			Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	}
	if candidate != "" && !slices.ContainsFunc(st.Members, func(m ClusterMember) bool { return m.Name == candidate }) {
		msg := fmt.Sprintf("%s=%q is not a member of the cluster (members: %s); the request is dropped",
			AnnotationSwitchoverTo, candidate, strings.Join(memberNames(st), ", "))
		cond(metav1.ConditionFalse, "UnknownTarget", msg)
		r.event(c, corev1.EventTypeWarning, "SwitchoverRefused", "Switchover", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverTo)
	}
	switch {
	case st.Leader == "":
		// ramd fails over by itself; the request waits for a primary to switch over from.
		cond(metav1.ConditionFalse, "NoPrimary", "the requested switchover waits: no member holds the leader lock")
		return nil
	case candidate == st.Leader:
		msg := fmt.Sprintf("%s is the primary already; nothing to do", candidate)
		cond(metav1.ConditionTrue, "AlreadyPrimary", msg)
		r.event(c, corev1.EventTypeNormal, "SwitchoverSkipped", "Switchover", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverTo)
	}
	pw, err := r.apiPassword(ctx, c)
	if err != nil {
		return err
	}
	id, err := r.Ramd.Switchover(ctx, pods, apiUser, pw, st.Leader, candidate)
	var refused *SwitchoverRefusedError
	switch {
	case errors.As(err, &refused):
		cond(metav1.ConditionFalse, "Refused", refused.Error())
		r.event(c, corev1.EventTypeWarning, "SwitchoverRefused", "Switchover", refused.Error())
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverTo)
	case err != nil:
		return err
	}
	to := candidate
	if to == "" {
		to = "any member"
	}
	msg := fmt.Sprintf("ramd switches over from %s to %s (job %s)", st.Leader, to, id)
	cond(metav1.ConditionUnknown, "InProgress", msg)
	r.event(c, corev1.EventTypeNormal, "SwitchoverRequested", "Switchover", msg)
	return r.setAnnotations(ctx, c, map[string]string{AnnotationSwitchoverJob: id}, AnnotationSwitchoverTo)
}

// followSwitchover reads ramd's job and, once it ended, reports the outcome and removes the
// job's annotation.
func (r *Reconciler) followSwitchover(ctx context.Context, c *ramdv1.PostgreSQLCluster, pods []corev1.Pod, id string) error {
	j, err := r.Ramd.Job(ctx, pods, id)
	cond := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: ConditionSwitchover,
			Status: status, Reason: reason, Message: msg, ObservedGeneration: c.Generation})
	}
	switch {
	case errors.Is(err, ErrJobNotFound):
		msg := fmt.Sprintf("ramd no longer knows switchover job %s; its outcome is unknown", id)
		cond(metav1.ConditionFalse, "JobLost", msg)
		r.event(c, corev1.EventTypeWarning, "SwitchoverUnknown", "Switchover", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverJob)
	case err != nil:
		return err
	case j.State == JobSucceeded:
		msg := fmt.Sprintf("switched over from %s to %s (job %s)", j.From, j.To, id)
		cond(metav1.ConditionTrue, "Succeeded", msg)
		r.event(c, corev1.EventTypeNormal, "SwitchedOver", "Switchover", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverJob)
	case j.State == JobFailed:
		msg := fmt.Sprintf("the switchover from %s failed: %s (job %s)", j.From, j.Error, id)
		cond(metav1.ConditionFalse, "Failed", msg)
		r.event(c, corev1.EventTypeWarning, "SwitchoverFailed", "Switchover", msg)
		return r.setAnnotations(ctx, c, nil, AnnotationSwitchoverJob)
	}
	return nil // pending or running: looked at again at the next pass
}

func memberNames(st *ClusterStatus) []string {
	out := make([]string, 0, len(st.Members))
	for _, m := range st.Members {
		out = append(out, m.Name)
	}
	return out
}

// setAnnotations sets and removes annotations of the resource with a merge patch of its
// metadata. Only the annotations and the resource version are taken back into c: the
// status in c holds this pass's changes, which the caller writes.
func (r *Reconciler) setAnnotations(ctx context.Context, c *ramdv1.PostgreSQLCluster, set map[string]string, remove ...string) error {
	cp := c.DeepCopy()
	base := cp.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	for k, v := range set {
		cp.Annotations[k] = v
	}
	for _, k := range remove {
		delete(cp.Annotations, k)
	}
	if err := r.Patch(ctx, cp, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("updating the annotations of %s: %w", c.Name, err)
	}
	c.Annotations = cp.Annotations
	c.ResourceVersion = cp.ResourceVersion
	return nil
}
