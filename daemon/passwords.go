package daemon

import (
	"context"

	"github.com/ramd-project/ramd/daemon/pg"
)

// RotatePasswords asks the loop to make next the database passwords in force (an empty one
// is kept): the leader gives the roles the new passwords first, over a connection made with
// the old ones; a standby switches and rewrites primary_conninfo, so its walreceiver
// reconnects with the new replication password. Rotate the leader first, then the standbys
// (docs/SECURITY.md). Safe from any goroutine.
func (n *Node) RotatePasswords(next pg.Passwords) {
	n.rotation.Store(&next)
	n.Wake()
}

// rotatePasswords applies a pending rotation at the end of a cycle. A leader whose server
// does not run as a primary keeps it pending; a failure is logged and retried next cycle.
// Loop goroutine only.
func (n *Node) rotatePasswords(ctx context.Context, o *observation) {
	next := n.rotation.Load()
	if next == nil {
		return
	}
	primary := o.in.HoldsLock() && o.pg.Running && !o.pg.InRecovery
	if o.in.HoldsLock() && !primary {
		return
	}
	if err := n.pg.RotatePasswords(ctx, *next, primary); err != nil {
		n.logger.ErrorContext(ctx, "rotate the database passwords", "err", err)
		return
	}
	// A standby's primary_conninfo carries the replication password: rewrite it and reload
	// (the walreceiver reconnects with it). Until that worked the rotation stays pending;
	// the password swap above is idempotent.
	if leader := n.pgMem.following; !primary && leader != "" {
		if err := n.follow(ctx, leader); err != nil {
			n.logger.WarnContext(ctx, "rewrite primary_conninfo with the new replication password", "err", err)
			return
		}
	}
	n.rotation.CompareAndSwap(next, nil)
	n.logger.InfoContext(ctx, "database passwords rotated", "primary", primary, "upstream", n.pgMem.following)
}
