package consul

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// PutIfHeld writes value to key in one transaction with a check that session holds lockKey:
// the write happens only while the lock is held. It is the leader's heartbeat: a plain
// re-acquire of an unchanged key does not change its ModifyIndex, so replicas could not see
// it. It returns ErrConflict when the lock is not held by session.
func (s *Store) PutIfHeld(ctx context.Context, lockKey, session, key string, value []byte) error {
	full := s.prefix + key
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: s.prefix + lockKey, Session: session}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: full, Value: value}},
	}
	var ok bool
	var resp *api.TxnResponse
	err := s.c.write(ctx, "kv.txn", full, func(ctx context.Context) error {
		var err error
		ok, resp, _, err = s.c.api.Txn().Txn(ops, queryOpts(ctx))
		return err
	})
	if err != nil {
		return fmt.Errorf("txn put %s if %s held: %w", full, lockKey, s.c.translate(ctx, err))
	}
	if !ok {
		why := "rolled back"
		if resp != nil && len(resp.Errors) > 0 {
			why = resp.Errors[0].What
		}
		return fmt.Errorf("txn put %s if %s held: %s: %w", full, lockKey, why, ErrConflict)
	}
	return nil
}
