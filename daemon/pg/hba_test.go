package pg

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHBAConfNoTrust: whatever the configuration, no generated line accepts a connection
// without authentication except the peer lines of the unix socket, and every TCP line asks
// for scram-sha-256.
func TestHBAConfNoTrust(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want []string // lines (fields joined by one space) that must be present
	}{
		{name: "loopback defaults", cfg: Config{},
			want: []string{
				"local all postgres peer map=ramd",
				"local all all scram-sha-256",
				"host all postgres 127.0.0.1/32 scram-sha-256",
				"host replication replicator 127.0.0.1/32 scram-sha-256",
				"host all all 127.0.0.1/32 scram-sha-256",
			}},
		{name: "network with passwords", cfg: Config{ListenAddr: "10.0.0.5,127.0.0.1", HBAAllow: "10.0.0.0/24,fd00::/64",
			SuperuserPassword: "s", ReplicationPassword: "r", Superuser: "admin", ReplicationUser: "repl"},
			want: []string{
				"local all admin peer map=ramd",
				"host all admin 10.0.0.5/32 scram-sha-256",
				"host replication repl 10.0.0.0/24 scram-sha-256",
				"host replication admin fd00::/64 scram-sha-256",
				"host all all fd00::/64 scram-sha-256",
			}},
		{name: "TLS: hostssl only", cfg: Config{HBAAllow: "10.0.0.0/8", TLSCertFile: "/c", TLSKeyFile: "/k", TLSCAFile: "/ca"},
			want: []string{
				"local all postgres peer map=ramd",
				"hostssl all postgres 127.0.0.1/32 scram-sha-256",
				"hostssl replication replicator 10.0.0.0/8 scram-sha-256",
				"hostssl all all 10.0.0.0/8 scram-sha-256",
			}},
		{name: "TLS with a replication client certificate", cfg: Config{HBAAllow: "10.0.0.0/8", TLSCertFile: "/c", TLSKeyFile: "/k", TLSCAFile: "/ca",
			TLSReplicationCertFile: "/rc", TLSReplicationKeyFile: "/rk"},
			want: []string{
				"hostssl replication replicator 10.0.0.0/8 cert",
				"hostssl replication postgres 10.0.0.0/8 scram-sha-256",
				"hostssl all all 10.0.0.0/8 scram-sha-256",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i := &Instance{cfg: tt.cfg.withDefaults(), osAccount: "postgres"}
			var lines []string
			for _, l := range strings.Split(i.hbaConf(), "\n") {
				f := strings.Fields(l)
				if len(f) == 0 || strings.HasPrefix(f[0], "#") {
					continue
				}
				lines = append(lines, strings.Join(f, " "))
				method := f[len(f)-1]
				if f[0] == "local" {
					if strings.Contains(l, "peer") {
						method = f[len(f)-2]
					}
				} else if want := map[bool]string{true: "hostssl", false: "host"}[tt.cfg.TLSCertFile != ""]; f[0] != want {
					t.Errorf("line %q: type %s, want local or %s", l, f[0], want)
				}
				switch {
				case method == "trust" || method == "password" || method == "md5":
					t.Errorf("line %q: method %s", l, method)
				case f[0] == "hostssl" && method == "cert" && f[1] == "replication" && f[2] == i.cfg.ReplicationUser && i.cfg.replicationCert():
					// the replication role by its client certificate, over TLS only
				case f[0] != "local" && method != "scram-sha-256":
					t.Errorf("TCP line %q: method %s, want scram-sha-256", l, method)
				case method == "peer" && f[2] != i.cfg.Superuser:
					t.Errorf("peer line %q is for %s, want only the superuser", l, f[2])
				}
			}
			got := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("pg_hba.conf lacks %q:\n%s", w, got)
				}
			}
			if ident := i.identConf(); !strings.Contains(ident, "\nramd postgres "+i.cfg.Superuser+"\n") {
				t.Errorf("pg_ident.conf = %q", ident)
			}
		})
	}
}

func TestLoopbackPasswords(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	su, rep, err := LoopbackPasswords()
	if err != nil {
		t.Fatal(err)
	}
	if len(su) < 20 || len(rep) < 20 || su == rep {
		t.Fatalf("weak or equal passwords: %d and %d characters", len(su), len(rep))
	}
	su2, rep2, err := LoopbackPasswords()
	if err != nil || su2 != su || rep2 != rep {
		t.Fatalf("second call gave other passwords (err %v)", err)
	}
	st, err := os.Stat(LoopbackPasswordsPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, err %v; want 0600", st.Mode(), err)
	}
	// A directory others may enter is refused, not trusted.
	if err := os.Chmod(filepath.Dir(LoopbackPasswordsPath()), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoopbackPasswords(); err == nil || !strings.Contains(err.Error(), "grants access to others") {
		t.Fatalf("open directory accepted: %v", err)
	}
}

func TestReadSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Config{SuperuserPasswordFile: write("su", "s3cret\n"), ReplicationPasswordFile: write("rep", "r\r\n")}
	if err := c.ReadSecretFiles(); err != nil || c.SuperuserPassword != "s3cret" || c.ReplicationPassword != "r" {
		t.Fatalf("ReadSecretFiles: %v, %q %q", err, c.SuperuserPassword, c.ReplicationPassword)
	}
	for name, c := range map[string]Config{
		"both set":   {SuperuserPassword: "x", SuperuserPasswordFile: write("a", "y")},
		"empty file": {ReplicationPasswordFile: write("e", "\n")},
		"missing":    {ReplicationPasswordFile: filepath.Join(dir, "none")},
		"relative":   {ReplicationPasswordFile: "rel"},
	} {
		err := c.ReadSecretFiles()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "_FILE") {
			t.Errorf("%s: %v; want a configuration error naming the _FILE variable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "y") && name == "both set" && strings.Contains(err.Error(), `"y"`) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}
