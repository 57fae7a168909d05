package daemon

// This file: which member a backup is taken from (backup.run_on). The leader runs every
// backup job; with prefer-standby or standby it points the tool at a streaming standby
// (pgBackRest --backup-standby: through the standby's pgBackRest TLS server on its host
// when backup.pgbackrest.tls_server is enabled, else with both data directories on this
// machine; Barman's postgres method over the network, with primary_conninfo at the
// primary), and records in the job which member served and why.

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// defaultBackupLag is the replay lag a standby may have to serve a backup when
// maximum_lag_on_failover is not set: the tool waits for the standby to replay the
// backup's start point, so a far-behind standby only makes the backup slower.
const defaultBackupLag = 16 << 20

// standbyAccess is how a tool reaches the standby it backs up.
type standbyAccess int

const (
	// standbyLocalFiles: the tool reads the standby's data directory on this machine
	// (pgBackRest 2.45 without SSH or its TLS server; a custom tool gets its directory).
	standbyLocalFiles standbyAccess = iota
	// standbyNetwork: the tool connects to the standby's server (Barman's postgres method:
	// pg_basebackup and a libpq connection), wherever it runs.
	standbyNetwork
	// standbyTLS: pgBackRest reaches the standby through the TLS server ramd runs on every
	// member (backup.pgbackrest.tls_server), wherever it runs: its record must name its
	// host and data directory.
	standbyTLS
)

// standbyAccessOf is how the tool of cfg reaches a standby.
func standbyAccessOf(cfg *dynconf.Backup) standbyAccess {
	switch {
	case cfg.Tool == dynconf.ToolBarman:
		return standbyNetwork
	case cfg.Tool == dynconf.ToolPgBackRest && cfg.PgBackRest.TLSServer.Enabled:
		return standbyTLS
	}
	return standbyLocalFiles
}

// backupCandidate is a member as the choice of a backup source sees it.
type backupCandidate struct {
	Name string
	// Record is the member's published record.
	Record consul.Member
	// Reachable is false when the tool cannot reach the member: for standbyLocalFiles its
	// data directory is not on this machine, for standbyNetwork its conn_url names no host
	// and port.
	Reachable bool
}

// backupSource is the member a backup is taken from.
type backupSource struct {
	// Standby is the standby's name ("" the primary).
	Standby string
	// Reason says why, for the job's record.
	Reason string
}

// chooseBackupSource picks the member a backup runs against: the primary when runOn is
// primary; else the streaming, reachable standby with the least replay lag within maxLag
// (ties by name). With no such standby, prefer-standby falls back to the primary and
// standby refuses (err names why each was passed over). Pure.
func chooseBackupSource(runOn string, access standbyAccess, primaryLSN, maxLag uint64, cands []backupCandidate) (backupSource, error) {
	if runOn == "" || runOn == dynconf.RunOnPrimary {
		return backupSource{Reason: "backup.run_on is primary"}, nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Name < cands[j].Name })
	var best *backupCandidate
	var bestLag uint64
	var passed []string
	for i := range cands {
		c := &cands[i]
		r := c.Record
		lag := uint64(0)
		if r.ReplayLSN != nil && primaryLSN > *r.ReplayLSN {
			lag = primaryLSN - *r.ReplayLSN
		}
		var why string
		switch {
		case r.Role == "primary" || r.Role == "master":
			continue
		case r.State != "running":
			why = "not running (" + r.State + ")"
		case r.ReplicationState != "streaming":
			why = "not streaming (" + r.ReplicationState + ")"
		case r.Tags["nobackup"] == true:
			why = "tagged nobackup"
		case access != standbyNetwork && r.DataDir == "":
			why = "publishes no data directory"
		case access == standbyLocalFiles && !c.Reachable:
			why = "its data directory is not on this machine (a standby on another host needs backup.pgbackrest.tls_server)"
		case !c.Reachable:
			why = "its conn_url names no host and port"
		case r.ReplayLSN == nil:
			why = "reports no replay position"
		case lag > maxLag:
			why = fmt.Sprintf("replay lag %d bytes > %d", lag, maxLag)
		}
		if why != "" {
			passed = append(passed, c.Name+": "+why)
			continue
		}
		if best == nil || lag < bestLag {
			best, bestLag = c, lag
		}
	}
	if best != nil {
		return backupSource{Standby: best.Name, Reason: fmt.Sprintf("%s: standby %s streams with replay lag %d bytes", runOn, best.Name, bestLag)}, nil
	}
	why := "no standby"
	if len(passed) > 0 {
		why = "no healthy standby within the lag limit (" + strings.Join(passed, "; ") + ")"
	}
	if runOn == dynconf.RunOnStandby {
		return backupSource{}, fmt.Errorf("backup.run_on is standby but there is %s", why)
	}
	return backupSource{Reason: "prefer-standby: " + why + ": the primary serves"}, nil
}

// backupsFromStandby reports whether the backup configuration may take backups from a
// standby (members then publish their directories).
func (n *Node) backupsFromStandby() bool {
	n.bk.mu.Lock()
	defer n.bk.mu.Unlock()
	return n.bk.cfg != nil && n.bk.cfg.RunOnValue() != dynconf.RunOnPrimary
}

// backupCandidates are the other members with whether the tool reaches them: for
// standbyLocalFiles their data directory is on this machine (a PG_VERSION file there, and
// a loopback or own address in conn_url); for standbyNetwork and standbyTLS their conn_url
// has a host and a port.
func (n *Node) backupCandidates(access standbyAccess, members map[string]consul.Member, replayed map[string]uint64) []backupCandidate {
	var out []backupCandidate
	for name, r := range members {
		if name == n.cfg.Name {
			continue
		}
		r = withReplayed(r, replayed[name])
		c := backupCandidate{Name: name, Record: r}
		switch {
		case access == standbyNetwork || access == standbyTLS:
			u, err := url.Parse(r.ConnURL)
			c.Reachable = err == nil && u.Hostname() != "" && u.Port() != ""
		case r.DataDir != "" && filepath.IsAbs(r.DataDir) && n.localHost(r.ConnURL):
			_, err := os.Stat(filepath.Join(r.DataDir, "PG_VERSION"))
			c.Reachable = err == nil
		}
		out = append(out, c)
	}
	return out
}

// replayedBy maps each standby streaming from this primary (by application_name, the
// member's name) to its replay position.
func replayedBy(rs []pg.Replication) map[string]uint64 {
	out := make(map[string]uint64, len(rs))
	for _, r := range rs {
		if r.ApplicationName != "" && r.ReplayLSN > 0 {
			out[r.ApplicationName] = max(out[r.ApplicationName], uint64(r.ReplayLSN))
		}
	}
	return out
}

// withReplayed returns the member record with its replay position moved forward to lsn
// when the primary saw the standby replay further than the record says: an idle standby
// republishes its record every 30 s, so after a WAL switch on an idle primary the record
// lags by a whole segment although the standby has replayed everything. Pure.
func withReplayed(r consul.Member, lsn uint64) consul.Member {
	if lsn == 0 || r.ReplayLSN != nil && *r.ReplayLSN >= lsn {
		return r
	}
	r.ReplayLSN = &lsn
	return r
}

// localHost reports whether a conn_url names this machine: a loopback address or the
// address this node's own server is reached at.
func (n *Node) localHost(connURL string) bool {
	u, err := url.Parse(connURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() || h == "localhost" {
		return true
	}
	return h != "" && h == n.pg.Config().ConnectAddr
}

// standbyMember is standby as the tool sees it from this node: its directory, port and
// socket from its record, this node's credentials (the cluster's), and a state directory of
// this node's own for the configuration that points the tool at it (pgBackRest's pg1,
// Barman's conninfo).
func standbyMember(self backup.Member, name string, r consul.Member) backup.Member {
	m := self
	m.Name, m.DataDir, m.SocketDir = name, r.DataDir, r.SocketDir
	m.StateDir = filepath.Join(self.StateDir, "standby")
	if u, err := url.Parse(r.ConnURL); err == nil {
		m.Host = u.Hostname()
		if p, err := strconv.Atoi(u.Port()); err == nil {
			m.Port = p
		}
	}
	return m
}

// remoteStandbyMember is standby as pgBackRest reaches it through its TLS server: its
// host, port, directories and state directory are those on its own host (the remote reads
// the configuration ramd writes there), with this node's credentials (the cluster's).
func remoteStandbyMember(self backup.Member, name string, r consul.Member) backup.Member {
	m := standbyMember(self, name, r)
	m.StateDir = backupStateDir(r.DataDir)
	return m
}
