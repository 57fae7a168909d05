package daemon

import (
	"bytes"
	"context"
	"slices"
	"strconv"

	"github.com/ramd-project/ramd/consul"
)

// noteBadRecords reports the records of a snapshot that did not decode (consul.DecodeSnapshot
// left them out: they count as absent), each once per version of its key: a warning with the
// key and its index, never its value. A key that decodes again is forgotten, so a later bad
// version is reported again. The initialize key is judged by initializeValue. Loop goroutine
// only.
func (n *Node) noteBadRecords(bad []consul.BadRecord) {
	for key := range n.badRecords {
		if key != consul.KeyInitialize && !slices.ContainsFunc(bad, func(b consul.BadRecord) bool { return b.Key == key }) {
			delete(n.badRecords, key)
		}
	}
	for _, b := range bad {
		n.reportBadRecord(b)
	}
}

// reportBadRecord logs a record that does not decode, once per version of the key.
func (n *Node) reportBadRecord(b consul.BadRecord) {
	if n.badRecords == nil {
		n.badRecords = map[string]uint64{}
	}
	if n.badRecords[b.Key] != b.Index {
		n.badRecords[b.Key] = b.Index
		n.logger.Warn("ignoring a Consul record that does not decode; it counts as absent",
			"key", b.Key, "index", b.Index, "bytes", b.Bytes, "err", b.Reason)
	}
}

// initializeValue is the cluster's system identifier as the initialize key p says: 0 for an
// empty value (a bootstrap in progress). A value that is no identifier is reported and
// replaced by the identifier this node read last (the leader then writes the key again,
// repairInitialize); a node that never read one sees a bootstrap in progress and waits.
// Taking it as absent instead would make members race to bootstrap, and as a bootstrap in
// progress would stop the leader's heartbeats. Loop goroutine only.
func (n *Node) initializeValue(p consul.Pair) uint64 {
	if len(bytes.TrimSpace(p.Value)) == 0 {
		return 0
	}
	if id, err := consul.Initialize(p.Value).SystemID(); err == nil && id != 0 {
		delete(n.badRecords, p.Key)
		n.knownSystemID = id
		return id
	}
	n.reportBadRecord(consul.BadRecord{Key: p.Key, Index: p.ModifyIndex, Bytes: len(p.Value), Reason: "not a system identifier"})
	return n.knownSystemID
}

// repairInitialize lets the leader write its system identifier over an initialize key that
// holds something else (CAS against the index read). Loop goroutine only.
func (n *Node) repairInitialize(ctx context.Context, o *observation) {
	if _, bad := n.badRecords[consul.KeyInitialize]; !bad || !o.in.HoldsLock() || !o.in.PG.Running || o.in.PG.InRecovery {
		return
	}
	id := o.in.PG.SystemID
	if id == 0 || n.knownSystemID != 0 && id != n.knownSystemID {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.store.CAS(cctx, consul.KeyInitialize, []byte(strconv.FormatUint(id, 10)), o.initIdx); err != nil {
		n.logger.WarnContext(ctx, "rewrite the initialize key", "err", err)
		return
	}
	delete(n.badRecords, consul.KeyInitialize)
	n.knownSystemID = id
	n.logger.InfoContext(ctx, "initialize key rewritten with the cluster's system identifier", "system_id", id)
}
