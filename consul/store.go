package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Store is the KV store of one cluster under "<namespace>/<scope>/". Safe for concurrent use.
// Every method takes keys relative to the prefix ("leader", "members/n1").
type Store struct {
	c      *Client
	prefix string
}

// Store returns the store of cluster scope under namespace. Leading and trailing slashes
// are trimmed, so Patroni's "/service" namespace and scope "pg" give "service/pg/".
func (c *Client) Store(namespace, scope string) *Store {
	parts := make([]string, 0, 2)
	for _, p := range []string{namespace, scope} {
		if p = strings.Trim(p, "/"); p != "" {
			parts = append(parts, p)
		}
	}
	prefix := strings.Join(parts, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{c: c, prefix: prefix}
}

// Prefix returns the store's key prefix, "<namespace>/<scope>/".
func (s *Store) Prefix() string { return s.prefix }

// pair converts an api pair to a Pair with its key relative to the store's prefix.
func (s *Store) pair(kv *api.KVPair) Pair {
	return Pair{
		Key:         strings.TrimPrefix(kv.Key, s.prefix),
		Value:       kv.Value,
		ModifyIndex: kv.ModifyIndex,
		LockIndex:   kv.LockIndex,
		Session:     kv.Session,
	}
}

// Get reads key. consistent asks the raft leader to confirm its leadership first: use it to
// confirm ownership of the leader key. It returns ErrNotFound when the key does not exist.
func (s *Store) Get(ctx context.Context, key string, consistent bool) (Pair, error) {
	kv, err := s.get(ctx, key, consistent)
	if err != nil {
		return Pair{}, err
	}
	return s.pair(kv), nil
}

// get reads the raw pair of key; ErrNotFound when it does not exist.
func (s *Store) get(ctx context.Context, key string, consistent bool) (*api.KVPair, error) {
	full := s.prefix + key
	var kv *api.KVPair
	err := s.c.read(ctx, "kv.get", full, 0, func(ctx context.Context) error {
		q := queryOpts(ctx)
		q.RequireConsistent = consistent
		var err error
		kv, _, err = s.c.api.KV().Get(full, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", full, s.c.translate(ctx, err))
	}
	if kv == nil {
		return nil, fmt.Errorf("get %s: %w", full, ErrNotFound)
	}
	return kv, nil
}

// Watch is a blocking query on key: it returns when the key's index moves past index or when
// wait elapses (Consul adds up to wait/16 of jitter), whichever is first. found is false
// when the key does not exist. Pass lastIndex back as the next index; it is reset to 0 when
// Consul's index went backwards (a snapshot restore), so the next call returns at once. With
// index 0 or wait <= 0 it reads without blocking. On error lastIndex is index unchanged.
func (s *Store) Watch(ctx context.Context, key string, index uint64, wait time.Duration) (p Pair, found bool, lastIndex uint64, err error) {
	full := s.prefix + key
	var (
		kv   *api.KVPair
		meta *api.QueryMeta
	)
	extra := time.Duration(0)
	if wait > 0 && index > 0 {
		extra = wait + wait/16
	}
	err = s.c.read(ctx, "kv.watch", full, extra, func(ctx context.Context) error {
		q := queryOpts(ctx)
		if extra > 0 {
			q.WaitIndex, q.WaitTime = index, wait
		}
		var err error
		kv, meta, err = s.c.api.KV().Get(full, q)
		return err
	})
	if err != nil {
		return Pair{}, false, index, fmt.Errorf("watch %s: %w", full, s.c.translate(ctx, err))
	}
	lastIndex = meta.LastIndex
	if lastIndex < index {
		lastIndex = 0
	}
	if kv == nil {
		return Pair{}, false, lastIndex, nil
	}
	return s.pair(kv), true, lastIndex, nil
}

// List returns every key under prefix+dir, keys relative to the store's prefix, sorted.
// dir "" lists the whole store; "members/" lists the members.
func (s *Store) List(ctx context.Context, dir string) ([]Pair, error) {
	full := s.prefix + dir
	var kvs api.KVPairs
	err := s.c.read(ctx, "kv.list", full, 0, func(ctx context.Context) error {
		var err error
		kvs, _, err = s.c.api.KV().List(full, queryOpts(ctx))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", full, s.c.translate(ctx, err))
	}
	out := make([]Pair, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, s.pair(kv))
	}
	slices.SortFunc(out, func(a, b Pair) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Put writes key unconditionally. Use it only for keys that decide nothing (a member's own
// record refresh, status); everything else is a CAS or an Acquire.
func (s *Store) Put(ctx context.Context, key string, value []byte) error {
	full := s.prefix + key
	err := s.c.write(ctx, "kv.put", full, func(ctx context.Context) error {
		_, err := s.c.api.KV().Put(&api.KVPair{Key: full, Value: value}, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", full, s.c.translate(ctx, err))
	}
	return nil
}

// CAS writes key only if its ModifyIndex is still index; index 0 creates the key only if it
// does not exist. It returns ErrConflict when the write did not take effect.
func (s *Store) CAS(ctx context.Context, key string, value []byte, index uint64) error {
	full := s.prefix + key
	var ok bool
	err := s.c.write(ctx, "kv.cas", full, func(ctx context.Context) error {
		var err error
		ok, _, err = s.c.api.KV().CAS(&api.KVPair{Key: full, Value: value, ModifyIndex: index}, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("cas %s at index %d: %w", full, index, s.c.translate(ctx, err))
	}
	if !ok {
		return fmt.Errorf("cas %s at index %d: %w", full, index, ErrConflict)
	}
	return nil
}

// Acquire writes value to key and locks it with session. Acquiring a key the session
// already holds succeeds (and updates the value). It returns ErrConflict when another
// session holds the key (or the key is in its lock delay), and ErrSessionLost when Consul
// says the session is invalid.
func (s *Store) Acquire(ctx context.Context, key string, value []byte, session string) error {
	full := s.prefix + key
	if session == "" {
		return fmt.Errorf("acquire %s: no session", full)
	}
	var ok bool
	err := s.c.write(ctx, "kv.acquire", full, func(ctx context.Context) error {
		var err error
		ok, _, err = s.c.api.KV().Acquire(&api.KVPair{Key: full, Value: value, Session: session}, writeOpts(ctx))
		return err
	})
	switch {
	case err != nil && bodyContains(err, "invalid session"):
		return fmt.Errorf("acquire %s with session %s: %w: %w", full, session, ErrSessionLost, err)
	case err != nil:
		return fmt.Errorf("acquire %s with session %s: %w", full, session, s.c.translate(ctx, err))
	case !ok:
		return fmt.Errorf("acquire %s with session %s: %w", full, session, ErrConflict)
	}
	return nil
}

// Release unlocks key held by session, keeping its value and flags: it reads the key, then
// unlocks it in a transaction that checks the key did not change in between. Releasing a
// key that does not exist or that no session holds succeeds. It returns ErrConflict when
// another session holds the key or the key changed between the read and the unlock.
func (s *Store) Release(ctx context.Context, key, session string) error {
	full := s.prefix + key
	if session == "" {
		return fmt.Errorf("release %s: no session", full)
	}
	kv, err := s.get(ctx, key, true)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("release: %w", err)
	case kv.Session == "":
		return nil
	case kv.Session != session:
		return fmt.Errorf("release %s: held by session %s, not %s: %w", full, kv.Session, session, ErrConflict)
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: full, Index: kv.ModifyIndex}},
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: full, Value: kv.Value, Flags: kv.Flags, Session: session}},
	}
	var ok bool
	err = s.c.write(ctx, "kv.release", full, func(ctx context.Context) error {
		var err error
		ok, _, _, err = s.c.api.Txn().Txn(ops, queryOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("release %s: %w", full, s.c.translate(ctx, err))
	}
	if !ok {
		return fmt.Errorf("release %s: changed since index %d: %w", full, kv.ModifyIndex, ErrConflict)
	}
	return nil
}

// Delete removes key unconditionally; deleting a missing key succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	full := s.prefix + key
	err := s.c.write(ctx, "kv.delete", full, func(ctx context.Context) error {
		_, err := s.c.api.KV().Delete(full, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", full, s.c.translate(ctx, err))
	}
	return nil
}

// DeleteCAS removes key only if its ModifyIndex is still index. It returns ErrConflict when
// the key changed. Consul treats a key that is already gone as deleted: that succeeds.
func (s *Store) DeleteCAS(ctx context.Context, key string, index uint64) error {
	full := s.prefix + key
	var ok bool
	err := s.c.write(ctx, "kv.delete_cas", full, func(ctx context.Context) error {
		var err error
		ok, _, err = s.c.api.KV().DeleteCAS(&api.KVPair{Key: full, ModifyIndex: index}, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s at index %d: %w", full, index, s.c.translate(ctx, err))
	}
	if !ok {
		return fmt.Errorf("delete %s at index %d: %w", full, index, ErrConflict)
	}
	return nil
}

// DeleteTree removes every key under prefix+dir; dir "" removes the whole store.
func (s *Store) DeleteTree(ctx context.Context, dir string) error {
	full := s.prefix + dir
	err := s.c.write(ctx, "kv.delete_tree", full, func(ctx context.Context) error {
		_, err := s.c.api.KV().DeleteTree(full, writeOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete tree %s: %w", full, s.c.translate(ctx, err))
	}
	return nil
}

// GetJSON reads key and decodes its JSON value into v, returning the key's ModifyIndex (the
// index to CAS against). It returns ErrNotFound when the key does not exist, and a decode
// error naming the key when the value is not valid JSON for v.
func (s *Store) GetJSON(ctx context.Context, key string, consistent bool, v any) (uint64, error) {
	kv, err := s.get(ctx, key, consistent)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return kv.ModifyIndex, fmt.Errorf("decode %s: %w", s.prefix+key, err)
	}
	return kv.ModifyIndex, nil
}
