package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// includeLine is appended to postgresql.conf so ramd.conf (written by WriteConfig)
// overrides it; postgresql.auto.conf (ALTER SYSTEM) still comes last.
const includeLine = "include_if_exists = 'ramd.conf'"

// Initdb creates a new cluster in the (absent or empty) data directory:
//
//	initdb -D <DataDir> --data-checksums -U <Superuser> -E UTF8 --locale=C [--waldir] [--pwfile]
//
// running as the OS user when ramd runs as root. The superuser password goes through a
// temporary 0600 file, never argv. With WALDir, pg_wal is a link to it (see walDirArgs). Data checksums make pg_rewind possible (wal_log_hints
// is set as well). Afterwards it writes pg_hba.conf (see hbaConf) and appends
// include_if_exists = 'ramd.conf' to postgresql.conf. On failure the partial data
// directory is removed. ctx bounds the run.
func (i *Instance) Initdb(ctx context.Context) error {
	created, err := i.prepareDataDir()
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	walArgs, walCreated, err := i.walDirArgs(ctx)
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	args := []string{
		"-D", i.cfg.DataDir,
		"--data-checksums",
		"-U", i.cfg.Superuser,
		"-E", "UTF8",
		"--locale=C",
	}
	args = append(args, walArgs...)
	pw, err := i.writeTempSecret(i.passwords().Superuser + "\n")
	if err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	defer os.Remove(pw)
	// scram-sha-256 for host lines makes initdb store the password as a SCRAM verifier also
	// on PostgreSQL 13, whose password_encryption default is still md5. pg_hba.conf is
	// replaced right after (writeHBA).
	args = append(args, "--pwfile="+pw, "--auth-local=peer", "--auth-host=scram-sha-256")
	i.logger.InfoContext(ctx, "initializing data directory", "data_dir", i.cfg.DataDir)
	if _, err := i.run(ctx, "initdb", args); err != nil {
		if rmErr := i.clearDataDir(created); rmErr != nil {
			i.logger.WarnContext(ctx, "could not remove partial data directory", "data_dir", i.cfg.DataDir, "err", rmErr)
		}
		if rmErr := i.clearWALDir(walCreated); rmErr != nil {
			i.logger.WarnContext(ctx, "could not remove partial WAL directory", "wal_dir", i.cfg.WALDir, "err", rmErr)
		}
		return fmt.Errorf("initdb: %w", err)
	}
	if err := i.writeHBA(); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if err := i.ensureInclude(); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	return nil
}

// writeTempSecret writes s to a new 0600 file under os.TempDir() owned by the OS user and
// returns its path; the caller removes it.
func (i *Instance) writeTempSecret(s string) (string, error) {
	f, err := os.CreateTemp("", "ramd-pw-*")
	if err != nil {
		return "", fmt.Errorf("create password file: %w", err)
	}
	name := f.Name()
	_, werr := f.WriteString(s)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("write password file: %w", errors.Join(werr, cerr))
	}
	if err := i.chown(name); err != nil {
		_ = os.Remove(name)
		return "", err
	}
	if err := i.ensureTraversable(name); err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// identMap is the pg_ident.conf map of the peer lines in pg_hba.conf.
const identMap = "ramd"

// hbaConf renders pg_hba.conf. Rules, first match wins:
//
//   - over the unix socket, the superuser by peer authentication for the OS account that
//     runs PostgreSQL only (identConf maps it), every other role with scram-sha-256;
//   - over TCP (hostssl lines only when TLS is configured), scram-sha-256 on every line,
//     never trust: the superuser from loopback and
//     from every concrete listen address (ramd connects over TCP to LocalConn), then
//     replication and all databases from each HBAAllow CIDR (the replication role by its
//     client certificate instead when one is configured: method cert, hostssl only).
//
// A password is always configured or generated (see New), so no TCP line needs trust.
func (i *Instance) hbaConf() string {
	const scram = "scram-sha-256"
	su, rep := i.cfg.Superuser, i.cfg.ReplicationUser
	var b strings.Builder
	b.WriteString("# Written by ramd; every change is overwritten. TYPE DATABASE USER ADDRESS METHOD\n")
	line := func(typ, db, user, addr, m string) {
		fmt.Fprintf(&b, "%-6s %-12s %-16s %-24s %s\n", typ, db, user, addr, m)
	}
	peer := "peer map=" + identMap
	line("local", "all", su, "", peer)
	line("local", "replication", su, "", peer)
	line("local", "all", "all", "", scram)
	line("local", "replication", "all", "", scram)
	local := []string{"127.0.0.1/32", "::1/128"}
	for _, h := range strings.Split(i.cfg.ListenAddr, ",") {
		if a, err := netip.ParseAddr(strings.TrimSpace(h)); err == nil && !a.IsUnspecified() {
			p := netip.PrefixFrom(a, a.BitLen()).String()
			if !slices.Contains(local, p) {
				local = append(local, p)
			}
		}
	}
	host := i.hbaHostType()
	for _, cidr := range local {
		line(host, "all", su, cidr, scram)
		line(host, "replication", su, cidr, scram)
	}
	cidrs, _ := parseCIDRs(i.cfg.HBAAllow) // validated in New
	for _, p := range cidrs {
		line(host, "replication", rep, p.String(), i.replicationAuth())
		line(host, "replication", su, p.String(), scram)
		line(host, "all", "all", p.String(), scram)
	}
	return b.String()
}

// identConf renders pg_ident.conf: the OS account that runs PostgreSQL may log in over the
// unix socket as the superuser, and no other account.
func (i *Instance) identConf() string {
	return fmt.Sprintf("# Written by ramd; every change is overwritten. MAP SYSTEM-USER PG-USER\n%s %s %s\n",
		identMap, i.osAccount, i.cfg.Superuser)
}

// writeHBA writes pg_hba.conf and pg_ident.conf (owned by the OS user, mode 0600). It runs
// at initdb and with every WriteConfig, so a cloned or upgraded data directory gets this
// member's rules; PostgreSQL reads them at start and reload.
//
// A file that already holds the rules is left alone: WriteConfig runs often, and each
// atomic write costs an fsync, which a busy disk (a backup running) can stretch past the
// loop's budget.
func (i *Instance) writeHBA() error {
	for _, f := range []struct{ name, content string }{
		{"pg_ident.conf", i.identConf()},
		{"pg_hba.conf", i.hbaConf()},
	} {
		path := filepath.Join(i.cfg.DataDir, f.name)
		if old, err := os.ReadFile(path); err == nil && string(old) == f.content {
			continue
		}
		if err := i.writeFileAtomic(path, []byte(f.content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

// ensureInclude appends includeLine to postgresql.conf unless it is already there (also
// after a pg_basebackup from a server whose configuration lacks it).
func (i *Instance) ensureInclude() error {
	path := filepath.Join(i.cfg.DataDir, "postgresql.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read postgresql.conf: %w", err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if strings.TrimSpace(string(l)) == includeLine {
			return nil
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = append(b, "\n# Settings managed by ramd.\n"+includeLine+"\n"...)
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat postgresql.conf: %w", err)
	}
	if err := i.writeFileAtomic(path, b, st.Mode().Perm()); err != nil {
		return fmt.Errorf("append include to postgresql.conf: %w", err)
	}
	return nil
}
