package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
)

// apiServer runs the real router (api.NewRouter) over httptest for in-memory members: the
// first at the root, each other under /<name>/ (its api_url), and records every request.
type apiServer struct {
	URL     string
	nodes   map[string]*memNode
	handler http.Handler
	mu      sync.Mutex // guards reqs
	reqs    []request
}

// request is one request as the server received it; Body is compact JSON with sorted keys.
type request struct {
	Method, Path, IfMatch string
	Body                  []byte
}

func (r request) String() string { return r.Method + " " + r.Path + " " + string(r.Body) }

// startAPI serves members named names; each sees the cluster set with setCluster.
func startAPI(t *testing.T, names ...string) *apiServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &apiServer{URL: "http://" + ln.Addr().String(), nodes: map[string]*memNode{}}
	mux := http.NewServeMux()
	for i, name := range names {
		n := &memNode{name: name, first: i == 0, config: map[string]any{}, configIndex: 7, jobs: map[string][]consul.Job{}}
		s.nodes[name] = n
		r := api.NewRouter(api.Routes{Node: n, Admin: n, Jobs: n, Sync: n, Config: n, Ops: n, Params: n, Backups: n}, nil, nil, nil)
		if i == 0 {
			mux.Handle("/", r)
		} else {
			mux.Handle("/"+name+"/", http.StripPrefix("/"+name, r))
		}
	}
	s.handler = mux
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: s}}
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// ServeHTTP records the request and passes it on.
func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	var v any
	if json.Unmarshal(b, &v) == nil {
		b, _ = json.Marshal(v)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, request{Method: r.Method, Path: r.URL.Path, IfMatch: r.Header.Get("If-Match"), Body: b})
	s.mu.Unlock()
	s.handler.ServeHTTP(w, r)
}

// requests returns what the server received so far.
func (s *apiServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// log is the requests one per line, for substring checks.
func (s *apiServer) log() string {
	var lines []string
	for _, r := range s.requests() {
		lines = append(lines, r.String())
	}
	return strings.Join(lines, "\n")
}

// apiURL is the api_url of member name as Patroni records it.
func (s *apiServer) apiURL(name string) string {
	if _, ok := s.nodes[name]; !ok || s.nodes[name] == s.first() {
		return s.URL + "/patroni"
	}
	return s.URL + "/" + name + "/patroni"
}

func (s *apiServer) first() *memNode {
	for _, n := range s.nodes {
		if n.first {
			return n
		}
	}
	return nil
}

// setCluster makes every member see members (api_url filled in for the served ones), with the
// leader's optime at leaderOptime and pause as given.
func (s *apiServer) setCluster(members []daemon.MemberStatus, pause bool) {
	leader := ""
	for i, m := range members {
		if m.APIURL == "" {
			members[i].APIURL = s.apiURL(m.Name)
		}
		if m.Role == client.RoleLeader || m.Role == client.RoleStandbyLeader {
			leader = m.Name
		}
	}
	for _, n := range s.nodes {
		n.mu.Lock()
		n.status = &daemon.Status{CycleAt: time.Now(), Scope: "demo", Name: n.name, Version: "0.1.0", Leader: leader,
			Role: daemon.RoleReplica, State: "running", PGRunning: true, ServerVersion: 150004, Paused: pause,
			DCSReachable: true, LeaderOptime: leaderOptime, Members: members}
		n.mu.Unlock()
	}
}

// setVersion makes member name run ramd version and PostgreSQL server (server_version_num).
func (s *apiServer) setVersion(name, version string, server int) {
	n := s.nodes[name]
	n.mu.Lock()
	defer n.mu.Unlock()
	st := *n.status
	st.Version, st.ServerVersion = version, server
	n.status = &st
}

// leaderOptime is the leader's position in the test clusters: 200/3000060.
const leaderOptime = 0x20003000060

// member is a member of the test clusters, streaming with no lag unless it leads.
func member(name, role string) daemon.MemberStatus {
	m := daemon.MemberStatus{Name: name, Role: role, State: "streaming", Host: "10.0.0.1", Port: 5432, Timeline: 3,
		ReceiveLSN: leaderOptime, ReplayLSN: leaderOptime, LSN: leaderOptime}
	if role == client.RoleLeader || role == client.RoleStandbyLeader {
		m.State, m.ReceiveLSN, m.ReplayLSN, m.LSN = "running", 0, 0, 0
	}
	return m
}

// fixtureCluster is testdata/cluster.json as the members a node's status holds.
func fixtureCluster(t *testing.T) (members []daemon.MemberStatus, pause bool) {
	t.Helper()
	cl := loadFixture(t)
	parse := func(s string) uint64 {
		hi, lo, ok := strings.Cut(s, "/")
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			return 0 // unknown
		}
		return h<<32 | l
	}
	for _, m := range cl.Members {
		ms := daemon.MemberStatus{Name: m.Name, Role: m.Role, State: m.State, APIURL: m.APIURL, Host: m.Host, Port: m.Port,
			Timeline: m.Timeline, Tags: m.Tags, PendingRestart: m.PendingRestart,
			ReceiveLSN: parse(m.ReceiveLSN), ReplayLSN: parse(m.ReplayLSN), LSN: parse(m.LSN)}
		if m.Lag != nil {
			ms.Lag = m.Lag.Bytes
		}
		members = append(members, ms)
	}
	return members, cl.Pause
}

func loadFixture(t *testing.T) client.Cluster {
	t.Helper()
	raw, err := os.ReadFile("testdata/cluster.json")
	if err != nil {
		t.Fatal(err)
	}
	var cl client.Cluster
	if err := json.Unmarshal(raw, &cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// memNode is an in-memory node agent: the interfaces the router needs, over plain fields.
type memNode struct {
	name  string
	first bool
	mu    sync.Mutex // guards the fields below
	// status is what the HA loop published last.
	status *daemon.Status
	// jobs answers each read of a job with the next of its states (the last one stays).
	jobs map[string][]consul.Job
	// jobID is the id of the job an operation starts; refuse, when set, refuses it.
	jobID  string
	refuse error
	// restartErr refuses a restart now.
	restartErr error
	// scheduled: a restart is scheduled (DELETE /restart removes it).
	scheduled bool
	history   []consul.HistoryEntry
	sync      daemon.SyncView
	// config is the dynamic configuration at configIndex.
	config      map[string]any
	configIndex uint64
	// listed is what GET /api/v1/jobs lists.
	listed []consul.Job
	// backups is the repository; backupRequests the backups asked for.
	backups        backup.Catalog
	backupRequests []daemon.BackupRequest
	schedules      []daemon.ScheduleView
}

func (n *memNode) Status() *daemon.Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

func (n *memNode) ConfirmLeader(string) bool { return false }

func (n *memNode) start() (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.jobID, n.refuse
}

func (n *memNode) RequestSwitchover(context.Context, daemon.SwitchoverRequest) (string, error) {
	return n.start()
}

func (n *memNode) Job(_ context.Context, id string) (consul.Job, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	states := n.jobs[id]
	if len(states) == 0 {
		return consul.Job{}, consul.ErrNotFound
	}
	if len(states) > 1 {
		n.jobs[id] = states[1:]
	}
	return states[0], nil
}

func (n *memNode) Jobs(context.Context) ([]consul.Job, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.listed, nil
}

func (n *memNode) CancelSwitchover(context.Context) error { return daemon.ErrNoSwitchover }

func (n *memNode) DynamicConfig(context.Context) (map[string]any, uint64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.config, n.configIndex, nil
}

func (n *memNode) PatchConfig(_ context.Context, patch map[string]any, ifMatch *uint64) (map[string]any, error) {
	return n.writeConfig(patch, ifMatch, false)
}

func (n *memNode) ReplaceConfig(_ context.Context, doc map[string]any, ifMatch *uint64) (map[string]any, error) {
	return n.writeConfig(doc, ifMatch, true)
}

// writeConfig is the CAS and the validation of the daemon, reduced to one rule: a negative
// maximum_lag_on_failover is refused.
func (n *memNode) writeConfig(doc map[string]any, ifMatch *uint64, replace bool) (map[string]any, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ifMatch != nil && *ifMatch != n.configIndex {
		return nil, consul.ErrConflict
	}
	next := doc
	if !replace {
		b, _ := json.Marshal(n.config)
		next = map[string]any{}
		_ = json.Unmarshal(b, &next)
		mergeInto(next, doc)
	}
	if v, ok := next["maximum_lag_on_failover"].(float64); ok && v < 0 {
		return nil, &daemon.FieldError{Field: "maximum_lag_on_failover", Value: v, Reason: "must be a whole number of bytes, 0 or more"}
	}
	n.config = next
	n.configIndex++
	return next, nil
}

func (n *memNode) History(context.Context) ([]consul.HistoryEntry, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.history, nil
}

func (n *memNode) SyncStandbys(context.Context) (daemon.SyncView, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sync, nil
}

func (n *memNode) SetSync(_ context.Context, s daemon.SyncSettings) (daemon.SyncView, error) {
	if err := s.Validate(); err != nil {
		return daemon.SyncView{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if s.Mode != nil {
		n.sync.Mode = *s.Mode
	}
	if s.Strict != nil {
		n.sync.Strict = *s.Strict
	}
	return n.sync, nil
}

func (n *memNode) Restart(context.Context, daemon.RestartRequest) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "", n.restartErr
}

func (n *memNode) ScheduleRestart(context.Context, daemon.RestartRequest) (string, error) {
	return n.start()
}

func (n *memNode) CancelScheduledRestart(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.scheduled {
		return daemon.ErrNoScheduledRestart
	}
	n.scheduled = false
	return nil
}

func (n *memNode) Reinitialize(context.Context, bool, bool) (string, error) { return n.start() }

func (n *memNode) Reload() {}

func (n *memNode) RollingRestart(context.Context, daemon.RollingRestartRequest) (string, error) {
	return n.start()
}

// phase is a job phase at second sec of the test's job timeline, reached by node.
func phase(name string, sec int, node string) consul.JobPhase {
	return consul.JobPhase{Name: name, At: time.Date(2026, 11, 26, 3, 0, sec, 0, time.UTC), Node: node}
}
