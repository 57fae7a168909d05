package daemon

import (
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
		if n.badRecords == nil {
			n.badRecords = map[string]uint64{}
		}
		if n.badRecords[p.Key] != p.ModifyIndex {
			n.badRecords[p.Key] = p.ModifyIndex
			n.logger.Warn("ignoring a Consul record that does not decode; it counts as absent",
				"key", p.Key, "index", p.ModifyIndex, "bytes", len(p.Value), "err", errText(err))
		}
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
