package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
)

// probeDoc is the part of another member's GET /patroni answer the loop reads.
type probeDoc struct {
	State    string `json:"state"`
	Role     string `json:"role"`
	Timeline int    `json:"timeline"`
	Xlog     struct {
		Location         uint64 `json:"location"`
		ReceivedLocation uint64 `json:"received_location"`
		ReplayedLocation uint64 `json:"replayed_location"`
	} `json:"xlog"`
	Ramd struct {
		HasLock      bool   `json:"has_lock"`
		Role         string `json:"role"`
		DCSReachable *bool  `json:"dcs_reachable"`
	} `json:"ramd"`
}

// probe asks the last leader and the other members directly, but only when the leader looks
// gone: a healthy cluster costs no extra requests.
func (n *Node) probe(ctx context.Context, o *observation) {
	in := &o.in
	if !in.ConsulOK {
		return
	}
	if in.HoldsLock() {
		n.switchoverPositions(ctx, o)
		return
	}
	stale := in.Now-in.LeaderSeenAt >= in.Timings.TTL
	if in.Leader.Present && !stale {
		return
	}
	if in.PG.Running && !in.PG.InRecovery {
		return // a running primary decides from its own lock state
	}
	targets := map[string]string{}
	if n.lead.LastLeader != "" && n.lead.LastLeader != n.cfg.Name {
		if m, ok := n.members[n.lead.LastLeader]; ok && m.APIURL != "" {
			targets[n.lead.LastLeader] = m.APIURL
		}
	}
	for name, m := range o.members {
		if name != n.cfg.Name && m.APIURL != "" {
			targets[name] = m.APIURL
		}
	}
	results := make(map[string]ha.Probe, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, url := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := n.probeOne(ctx, url)
			if p.Reached && p.Running && !p.Primary {
				n.freshPosition(ctx, name, &p)
			}
			mu.Lock()
			results[name] = p
			mu.Unlock()
		}()
	}
	wg.Wait()
	if p, ok := results[n.lead.LastLeader]; ok {
		in.LeaderProbe = p
	} else if n.lead.LastLeader != "" {
		in.LeaderProbe = ha.Probe{Asked: true}
	}
	for i := range in.Members {
		if p, ok := results[in.Members[i].Name]; ok {
			in.Members[i].Probe = p
		}
	}
}

// switchoverPositions reads the candidates' positions from their PostgreSQL when this leader
// has a switchover due: the published member records can be a loop old, and a lag check
// against them would refuse a candidate that is in fact caught up.
func (n *Node) switchoverPositions(ctx context.Context, o *observation) {
	sw := o.in.Switchover
	if sw == nil || sw.From != n.cfg.Name || !sw.Due {
		return
	}
	var wg sync.WaitGroup
	for i := range o.in.Members {
		m := &o.in.Members[i]
		if m.Name == n.cfg.Name || (sw.To != "" && m.Name != sw.To) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := ha.Probe{Reached: true, Running: true}
			n.freshPosition(ctx, m.Name, &p)
			if p.Running {
				m.LSN = p.LSN
			}
		}()
	}
	wg.Wait()
}

// freshPosition replaces a standby's position from its API (the snapshot of its last cycle,
// up to a loop old) with one read from its PostgreSQL now. Candidates compare positions with
// it: a stale, lower position of the standby that acknowledged the last commit would let a
// less advanced node win. A position that cannot be read counts as unknown.
func (n *Node) freshPosition(ctx context.Context, name string, p *ha.Probe) {
	conn, err := n.memberConn(name, false)
	if err == nil {
		qctx, cancel := context.WithTimeout(ctx, probeTimeout(n.timings()))
		defer cancel()
		var lsn pg.LSN
		if lsn, err = pg.ReceivedLSN(qctx, conn); err == nil {
			p.LSN = uint64(lsn)
			return
		}
	}
	n.logger.Debug("read position of member", "member", name, "err", err)
	p.Running, p.LSN = false, 0
}

func (n *Node) probeOne(ctx context.Context, apiURL string) ha.Probe {
	p := ha.Probe{Asked: true}
	doc, err := n.fetchStatus(ctx, apiURL)
	if err != nil {
		n.logger.Debug("probe", "url", apiURL, "err", err)
		return p
	}
	p.Reached = true
	p.Running = doc.State == "running"
	p.Primary = p.Running && doc.Ramd.Role == string(RolePrimary)
	p.HasLock = doc.Ramd.HasLock
	p.ConsulOK = doc.Ramd.DCSReachable == nil || *doc.Ramd.DCSReachable
	p.Timeline = doc.Timeline
	p.LSN = max(doc.Xlog.Location, doc.Xlog.ReceivedLocation, doc.Xlog.ReplayedLocation)
	return p
}

func (n *Node) fetchStatus(ctx context.Context, apiURL string) (probeDoc, error) {
	var doc probeDoc
	ctx, cancel := context.WithTimeout(ctx, probeTimeout(n.timings()))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(apiURL, "/")+"/patroni", nil)
	if err != nil {
		return doc, fmt.Errorf("probe request: %w", err)
	}
	pc := n.peers.get()
	pc.authorize(req) // members with RAMD_API_AUTH_READS protect /patroni
	resp, err := pc.http.Do(req)
	if err != nil {
		return doc, fmt.Errorf("probe %s: %w", apiURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return doc, fmt.Errorf("probe %s: read: %w", apiURL, err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("probe %s: decode: %w", apiURL, err)
	}
	return doc, nil
}

// postFailsafe asks one member to confirm this node as leader.
func (n *Node) postFailsafe(ctx context.Context, apiURL string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout(n.timings()))
	defer cancel()
	body := strings.NewReader(fmt.Sprintf(`{"name":%q}`, n.cfg.Name))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(apiURL, "/")+"/failsafe", body)
	if err != nil {
		return fmt.Errorf("failsafe request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	pc := n.peers.get()
	pc.authorize(req)
	resp, err := pc.http.Do(req)
	if err != nil {
		return fmt.Errorf("failsafe %s: %w", apiURL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("failsafe %s: status %d", apiURL, resp.StatusCode)
	}
	return nil
}
