package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ErrNoMemberAddress means no pod of the cluster has an IP address yet (none scheduled or
// started; always the case under envtest, which runs no kubelet).
var ErrNoMemberAddress = errors.New("no member pod has an IP address yet")

// ClusterStatus is the part of ramd's GET /api/v1/cluster the operator reads.
type ClusterStatus struct {
	Leader         string          `json:"leader"`
	Timeline       int64           `json:"timeline"`
	PendingRestart []string        `json:"pending_restart"`
	Members        []ClusterMember `json:"members"`
	Node           struct {
		Backup *struct {
			LastSuccess time.Time `json:"last_success"`
		} `json:"backup"`
	} `json:"node"`
}

// ClusterMember is one member of ClusterStatus.
type ClusterMember struct {
	Name           string          `json:"name"`
	Role           string          `json:"role"`
	State          string          `json:"state"`
	Timeline       int64           `json:"timeline"`
	PendingRestart bool            `json:"pending_restart"`
	Lag            json.RawMessage `json:"lag"`
}

// LagBytes is the member's lag, nil when ramd reported none or "unknown".
func (m ClusterMember) LagBytes() *int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(string(m.Lag)), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// RamdClient reads and changes a cluster through the REST API of its members.
type RamdClient interface {
	// Status asks the members in turn for the cluster's status and returns the first answer.
	Status(ctx context.Context, pods []corev1.Pod) (*ClusterStatus, error)
	// PatchConfig merges patch into the cluster's dynamic configuration (PATCH /config).
	PatchConfig(ctx context.Context, pods []corev1.Pod, user, password string, patch map[string]any) error
	// Switchover asks ramd to hand the leader lock from leader to candidate (any eligible
	// member when candidate is empty) and returns the id of ramd's job (POST
	// /api/v1/switchover), asking the leader's pod first.
	Switchover(ctx context.Context, pods []corev1.Pod, user, password, leader, candidate string) (string, error)
	// Job reads one of ramd's jobs (GET /api/v1/jobs/{id}) from the first member that answers.
	Job(ctx context.Context, pods []corev1.Pod, id string) (*Job, error)
	// RollingRestart asks ramd for a rolling restart of the members waiting for one (POST
	// /api/v1/restart with restart_pending) and returns the id of ramd's job.
	RollingRestart(ctx context.Context, pods []corev1.Pod, user, password string) (string, error)
}

// ConfigRefusedError is ramd's 422: the configuration was refused, nothing changed.
type ConfigRefusedError struct{ Body string }

func (e *ConfigRefusedError) Error() string { return "ramd refused the configuration: " + e.Body }

// HTTPRamdClient talks to ramd's API on each pod's IP address, at the port of the pod's
// container port named "api" (8008 in the pods the operator renders).
type HTTPRamdClient struct {
	// Port of ramd's API on a pod that declares no container port named "api" (PortAPI
	// when zero).
	Port int
	// Timeout of one request to one member.
	Timeout time.Duration
	Client  *http.Client
}

func (h *HTTPRamdClient) addresses(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		if a := h.address(p); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// address is host:port of the pod's ramd API, "" while the pod has no IP or is going away.
func (h *HTTPRamdClient) address(p corev1.Pod) string {
	if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
		return ""
	}
	return net.JoinHostPort(p.Status.PodIP, strconv.Itoa(h.apiPort(p)))
}

// apiPort is the pod's container port named "api", else h.Port, else PortAPI.
func (h *HTTPRamdClient) apiPort(p corev1.Pod) int {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == "api" && cp.ContainerPort > 0 {
				return int(cp.ContainerPort)
			}
		}
	}
	if h.Port != 0 {
		return h.Port
	}
	return PortAPI
}

func (h *HTTPRamdClient) do(ctx context.Context, method, url string, body []byte, user, password string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, fmt.Errorf("building %s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("reading the answer of %s %s: %w", method, url, err)
	}
	return raw, resp.StatusCode, nil
}

// Status implements RamdClient.
func (h *HTTPRamdClient) Status(ctx context.Context, pods []corev1.Pod) (*ClusterStatus, error) {
	addrs := h.addresses(pods)
	if len(addrs) == 0 {
		return nil, ErrNoMemberAddress
	}
	var errs []error
	for _, a := range addrs {
		raw, code, err := h.do(ctx, http.MethodGet, "http://"+a+"/api/v1/cluster", nil, "", "")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("GET /api/v1/cluster on %s: status %d", a, code)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var st ClusterStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			errs = append(errs, fmt.Errorf("decoding /api/v1/cluster of %s: %w", a, err))
			continue
		}
		return &st, nil
	}
	return nil, fmt.Errorf("no member answered: %w", errors.Join(errs...))
}

// PatchConfig implements RamdClient: the first member that answers applies it (ramd
// writes the configuration to Consul with a compare-and-set).
func (h *HTTPRamdClient) PatchConfig(ctx context.Context, pods []corev1.Pod, user, password string, patch map[string]any) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("encoding the configuration patch: %w", err)
	}
	addrs := h.addresses(pods)
	if len(addrs) == 0 {
		return ErrNoMemberAddress
	}
	var errs []error
	for _, a := range addrs {
		raw, code, err := h.do(ctx, http.MethodPatch, "http://"+a+"/config", body, user, password)
		switch {
		case err != nil:
			errs = append(errs, err)
		case code == http.StatusUnprocessableEntity || code == http.StatusBadRequest:
			return &ConfigRefusedError{Body: strings.TrimSpace(string(raw))}
		case code/100 == 2:
			return nil
		default:
			errs = append(errs, fmt.Errorf("PATCH /config on %s: status %d: %s", a, code, bytes.TrimSpace(raw)))
		}
	}
	return fmt.Errorf("no member took the configuration: %w", errors.Join(errs...))
}
