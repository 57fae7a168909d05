package consul

import "time"

// JobKey is the key of one tracked job (switchover, failover).
func JobKey(id string) string { return KeyJobs + id }

// Job states.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is a tracked operation: a caller follows it by id instead of timing out.
type Job struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	From        string     `json:"from,omitempty"`
	To          string     `json:"to,omitempty"`
	ScheduledAt string     `json:"scheduled_at,omitempty"`
	State       string     `json:"state"`
	Phases      []JobPhase `json:"phases"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// TraceParent carries the W3C trace context of the request that created the job.
	TraceParent string `json:"traceparent,omitempty"`
}

// JobPhase is one step of a job with the time it was reached.
type JobPhase struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	Node string    `json:"node,omitempty"`
}
