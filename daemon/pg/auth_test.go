package pg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd-project/ramd/daemon/pg"
)

// TestTCPNeedsPassword: a real server set up by ramd refuses TCP connections without a
// password or with a wrong one (also for the superuser, also from loopback), accepts the
// configured ones, and its pg_hba.conf has no trust line.
func TestTCPNeedsPassword(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "auth", logger, func(c *pg.Config) {
		c.SuperuserPassword, c.ReplicationPassword = "su-pass-1", "rep-pass-1"
	})
	startPrimary(t, &inst, logger)
	if err := inst.EnsureRoles(opCtx(t)); err != nil {
		t.Fatalf("EnsureRoles: %v", err)
	}
	hba, err := os.ReadFile(filepath.Join(inst.Config().DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(hba), "trust") {
		t.Errorf("pg_hba.conf has a trust line:\n%s", hba)
	}
	connect := func(p pg.ConnParams) error {
		ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
		defer cancel()
		c, err := pgx.Connect(ctx, p.DSN()+" sslmode=disable")
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
	su := inst.LocalConn()
	if err := connect(su); err != nil {
		t.Fatalf("superuser with its password: %v", err)
	}
	rep := inst.ReplicationConn()
	rep.Host = su.Host
	if err := connect(rep); err != nil {
		t.Fatalf("replication user with its password: %v", err)
	}
	for name, p := range map[string]pg.ConnParams{
		"superuser without password":    {Host: su.Host, Port: su.Port, User: su.User},
		"superuser with wrong password": {Host: su.Host, Port: su.Port, User: su.User, Password: "wrong"},
		"replication without password":  {Host: su.Host, Port: su.Port, User: rep.User},
	} {
		err := connect(p)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" && pgErr.Code != "28000" {
			t.Errorf("%s: %v; want an authentication failure", name, err)
		}
	}

	// Rotation on the primary: the new passwords work, the old ones no longer do, and ramd
	// itself connects with the new ones.
	next := pg.Passwords{Superuser: "su-pass-2", Replication: "rëp-pass-2"}
	if err := inst.RotatePasswords(opCtx(t), next, true); err != nil {
		t.Fatalf("RotatePasswords: %v", err)
	}
	if err := inst.EnsureRoles(opCtx(t)); err != nil {
		t.Fatalf("EnsureRoles after rotation: %v", err)
	}
	if inst.Config().SuperuserPassword != next.Superuser || inst.LocalConn().Password != next.Superuser {
		t.Errorf("ramd still uses the old superuser password")
	}
	newRep := inst.ReplicationConn()
	newRep.Host = su.Host
	if err := connect(inst.LocalConn()); err != nil {
		t.Errorf("superuser with the new password: %v", err)
	}
	if err := connect(newRep); err != nil {
		t.Errorf("replication user with the new (non-ASCII) password: %v", err)
	}
	for name, p := range map[string]pg.ConnParams{"old superuser password": su, "old replication password": rep} {
		var pgErr *pgconn.PgError
		if err := connect(p); !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Errorf("%s: %v; want 28P01", name, err)
		}
	}
}
