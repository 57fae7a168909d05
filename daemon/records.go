package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/ramd-project/ramd/consul"
)

// decodeRecord decodes the JSON record p into dst and reports whether it could. A record
// that does not decode leaves dst untouched (never half-filled): the loop treats it as
// absent. It is reported once per version of the key (a warning with the key and its
// index, never its value), not every cycle. Loop goroutine only.
func decodeRecord[T any](n *Node, p consul.Pair, dst *T) bool {
	var v T
	if err := json.Unmarshal(p.Value, &v); err != nil {
		n.reportBadRecord(p, errText(err))
		return false
	}
	delete(n.badRecords, p.Key)
	*dst = v
	return true
}

// errText is a decode error without the record's bytes: encoding/json quotes the offending
// value in some errors, and a record may hold anything.
func errText(err error) string {
	switch e := err.(type) { //nolint:errorlint // the concrete types of encoding/json, unwrapped
	case *json.SyntaxError:
		return "invalid JSON at byte " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "a " + e.Value + " where " + e.Type.String() + " was expected at " + e.Field
	}
	return "not decodable"
}

// reportBadRecord logs a record that does not decode, once per version of the key.
func (n *Node) reportBadRecord(p consul.Pair, reason string) {
	if n.badRecords == nil {
		n.badRecords = map[string]uint64{}
	}
	if n.badRecords[p.Key] != p.ModifyIndex {
		n.badRecords[p.Key] = p.ModifyIndex
		n.logger.Warn("ignoring a Consul record that does not decode; it counts as absent",
			"key", p.Key, "index", p.ModifyIndex, "bytes", len(p.Value), "err", reason)
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
	n.reportBadRecord(p, "not a system identifier")
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
