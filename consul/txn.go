package consul

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/consul/api"
)

// PutIfHeld writes value to key in one transaction with a check that session holds lockKey:
// the write happens only while the lock is held. It is the leader's heartbeat: a plain
// re-acquire of an unchanged key does not change its ModifyIndex, so replicas could not see
// it. It returns ErrConflict when the lock is not held by session.
//
// Each key in absent must not exist: the heartbeat names KeyTakeover, so that it and a
// replica's claim (SetIfUnchanged) exclude each other.
func (s *Store) PutIfHeld(ctx context.Context, lockKey, session, key string, value []byte, absent ...string) error {
	full := s.prefix + key
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: s.prefix + lockKey, Session: session}}}
	for _, a := range absent {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.prefix + a}})
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: full, Value: value}})
	if err := s.txn(ctx, full, ops); err != nil {
		return fmt.Errorf("txn put %s if %s held: %w", full, lockKey, err)
	}
	return nil
}

// Seen is a key and the modify index it had when read (0: the key was absent).
type Seen struct {
	Key   string
	Index uint64
}

// SetIfUnchanged writes value to key in one transaction with a check that every key in
// seen still has the index it was read with (is still absent, for index 0). It returns
// ErrConflict when one changed.
func (s *Store) SetIfUnchanged(ctx context.Context, key string, value []byte, seen ...Seen) error {
	full := s.prefix + key
	var ops api.TxnOps
	for _, w := range seen {
		check := &api.KVTxnOp{Verb: api.KVCheckIndex, Key: s.prefix + w.Key, Index: w.Index}
		if w.Index == 0 {
			check = &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: s.prefix + w.Key}
		}
		ops = append(ops, &api.TxnOp{KV: check})
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: full, Value: value}})
	if err := s.txn(ctx, full, ops); err != nil {
		return fmt.Errorf("txn set %s if %v unchanged: %w", full, seen, err)
	}
	return nil
}

// AcquireClearing acquires key with session, as Acquire does, and deletes clear in the same
// transaction. It returns ErrConflict when another session holds key or key is in its lock
// delay, and ErrSessionLost when Consul says the session is invalid.
func (s *Store) AcquireClearing(ctx context.Context, key string, value []byte, session, clear string) error {
	full := s.prefix + key
	if session == "" {
		return fmt.Errorf("acquire %s: no session", full)
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: full, Value: value, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: s.prefix + clear}},
	}
	err := s.txn(ctx, full, ops)
	if err != nil && strings.Contains(err.Error(), "invalid session") {
		return fmt.Errorf("acquire %s with session %s: %w: %w", full, session, ErrSessionLost, err)
	}
	if err != nil {
		return fmt.Errorf("acquire %s with session %s: %w", full, session, err)
	}
	return nil
}

// txn runs ops as one transaction; a transaction Consul rolled back is ErrConflict, with
// the first reason Consul gave.
func (s *Store) txn(ctx context.Context, key string, ops api.TxnOps) error {
	var ok bool
	var resp *api.TxnResponse
	err := s.c.write(ctx, "kv.txn", key, func(ctx context.Context) error {
		var err error
		ok, resp, _, err = s.c.api.Txn().Txn(ops, queryOpts(ctx))
		return err
	})
	if err != nil {
		return s.c.translate(ctx, err)
	}
	if !ok {
		why := "rolled back"
		if resp != nil && len(resp.Errors) > 0 {
			why = resp.Errors[0].What
		}
		return fmt.Errorf("%s: %w", why, ErrConflict)
	}
	return nil
}
