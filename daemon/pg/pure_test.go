package pg_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ramd-project/ramd/daemon/pg"
)

func TestParseLSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    pg.LSN
		wantErr bool
	}{
		{name: "zero", in: "0/0", want: 0},
		{name: "typical", in: "16/B374D848", want: 0x16_B374D848},
		{name: "lower case", in: "16/b374d848", want: 0x16_B374D848},
		{name: "max", in: "FFFFFFFF/FFFFFFFF", want: ^pg.LSN(0)},
		{name: "leading zeros", in: "00000001/00000002", want: 1<<32 | 2},
		{name: "empty", in: "", wantErr: true},
		{name: "no slash", in: "16B374D848", wantErr: true},
		{name: "empty half", in: "16/", wantErr: true},
		{name: "too long", in: "1/123456789", wantErr: true},
		{name: "not hex", in: "1/XYZ", wantErr: true},
		{name: "sign", in: "+1/2", wantErr: true},
		{name: "spaces", in: " 1/2", wantErr: true},
		{name: "two slashes", in: "1/2/3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pg.ParseLSN(tt.in)
			if tt.wantErr {
				if !errors.Is(err, pg.ErrInvalidLSN) {
					t.Fatalf("ParseLSN(%q) = %v, %v; want ErrInvalidLSN", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLSN(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseLSN(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestLSNString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   pg.LSN
		want string
	}{
		{name: "zero", in: 0, want: "0/0"},
		{name: "typical", in: 0x16_B374D848, want: "16/B374D848"},
		{name: "low only", in: 0x3000060, want: "0/3000060"},
		{name: "max", in: ^pg.LSN(0), want: "FFFFFFFF/FFFFFFFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.in.String()); diff != "" {
				t.Errorf("String (-want +got):\n%s", diff)
			}
			back, err := pg.ParseLSN(tt.in.String())
			if err != nil || back != tt.in {
				t.Errorf("round trip: ParseLSN(%q) = %v, %v", tt.in.String(), back, err)
			}
		})
	}
}

func TestSlotName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, member, want string
	}{
		{name: "plain", member: "node1", want: "node1"},
		{name: "upper case", member: "Node1", want: "node1"},
		{name: "dash and dot", member: "pg-1.dc1", want: "pg_1_dc1"},
		{name: "underscore kept", member: "pg_1", want: "pg_1"},
		{name: "other characters as code points", member: "a b@c", want: "au0032bu0064c"},
		{name: "non ascii", member: "é", want: "u0233"},
		{name: "cut to 63", member: strings.Repeat("x", 70), want: strings.Repeat("x", 63)},
		{name: "empty", member: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, pg.SlotName(tt.member)); diff != "" {
				t.Errorf("SlotName(%q) (-want +got):\n%s", tt.member, diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() pg.Config {
		return pg.Config{DataDir: "/var/lib/ramd/data"}
	}
	tests := []struct {
		name    string
		mod     func(*pg.Config)
		wantErr []string // substrings of the error, empty for valid
	}{
		{name: "defaults", mod: func(*pg.Config) {}},
		{name: "full", mod: func(c *pg.Config) {
			c.BinDir, c.ListenAddr, c.Port, c.ConnectAddr = "/opt/pg/bin", "10.0.0.1,127.0.0.1", 6432, "db1.example.com"
			c.SocketDir, c.HBAAllow, c.LogFile = "/run/ramd", "10.0.0.0/8, 192.168.1.0/24,::1/128", "/var/log/ramd/pg.log"
			c.SuperuserPassword, c.ReplicationPassword = "s3cret'\\", "r"
		}},
		{name: "wildcard listen", mod: func(c *pg.Config) { c.ListenAddr = "*" }},
		{name: "sockets disabled", mod: func(c *pg.Config) { c.SocketDir = pg.SocketDirNone }},
		{name: "data dir missing", mod: func(c *pg.Config) { c.DataDir = "" },
			wantErr: []string{`RAMD_DATA_DIR="": is required`}},
		{name: "data dir relative", mod: func(c *pg.Config) { c.DataDir = "data" },
			wantErr: []string{`RAMD_DATA_DIR="data": must be an absolute path`}},
		{name: "data dir root", mod: func(c *pg.Config) { c.DataDir = "/" },
			wantErr: []string{`RAMD_DATA_DIR="/"`}},
		{name: "port too high", mod: func(c *pg.Config) { c.Port = 70000 },
			wantErr: []string{`RAMD_PG_PORT="70000": must be in 1..65535`}},
		{name: "port negative", mod: func(c *pg.Config) { c.Port = -1 },
			wantErr: []string{`RAMD_PG_PORT="-1"`}},
		{name: "bad cidr", mod: func(c *pg.Config) { c.HBAAllow = "10.0.0.0/8,nope" },
			wantErr: []string{`RAMD_PG_HBA_ALLOW="10.0.0.0/8,nope": must be a comma-separated list of CIDRs`}},
		{name: "bad listen", mod: func(c *pg.Config) { c.ListenAddr = "a b" },
			wantErr: []string{`RAMD_PG_LISTEN="a b"`}},
		{name: "bad connect addr", mod: func(c *pg.Config) { c.ConnectAddr = "host'x" },
			wantErr: []string{`RAMD_PG_CONNECT_ADDRESS="host'x"`}},
		{name: "relative bin dir", mod: func(c *pg.Config) { c.BinDir = "bin" },
			wantErr: []string{`RAMD_PG_BIN_DIR="bin": must be an absolute path`}},
		{name: "socket dir too long", mod: func(c *pg.Config) { c.SocketDir = "/" + strings.Repeat("s", 100) },
			wantErr: []string{"RAMD_PG_SOCKET_DIR", "shorter than 100 bytes"}},
		{name: "socket dir relative", mod: func(c *pg.Config) { c.SocketDir = "run" },
			wantErr: []string{`RAMD_PG_SOCKET_DIR="run": must be an absolute path or "none"`}},
		{name: "root os user", mod: func(c *pg.Config) { c.OSUser = "root" },
			wantErr: []string{`RAMD_PG_OS_USER="root": must be an unprivileged user name`}},
		{name: "bad superuser", mod: func(c *pg.Config) { c.Superuser = "post gres" },
			wantErr: []string{`RAMD_PG_SUPERUSER="post gres"`}},
		{name: "same users", mod: func(c *pg.Config) { c.ReplicationUser = "postgres" },
			wantErr: []string{`RAMD_PG_REPLICATION_USER="postgres": must differ from RAMD_PG_SUPERUSER`}},
		{name: "password with newline is redacted", mod: func(c *pg.Config) { c.ReplicationPassword = "a\nb" },
			wantErr: []string{`RAMD_PG_REPLICATION_PASSWORD="REDACTED": must not contain line breaks`}},
		{name: "log file inside data dir", mod: func(c *pg.Config) { c.LogFile = "/var/lib/ramd/data/log" },
			wantErr: []string{`RAMD_PG_LOG_FILE="/var/lib/ramd/data/log": must be outside RAMD_DATA_DIR`}},
		{name: "network without passwords", mod: func(c *pg.Config) { c.HBAAllow = "127.0.0.1/32,10.0.0.0/8" },
			wantErr: []string{`RAMD_PG_HBA_ALLOW="127.0.0.1/32,10.0.0.0/8": allows addresses beyond loopback, so RAMD_PG_SUPERUSER_PASSWORD and RAMD_PG_REPLICATION_PASSWORD`}},
		{name: "network without replication password", mod: func(c *pg.Config) { c.HBAAllow = "::/0"; c.SuperuserPassword = "s" },
			wantErr: []string{`RAMD_PG_HBA_ALLOW="::/0": allows addresses beyond loopback`}},
		{name: "all of 127/8 is loopback", mod: func(c *pg.Config) { c.HBAAllow = "127.0.0.0/8,::1/128" }},
		{name: "a prefix wider than loopback is not", mod: func(c *pg.Config) { c.HBAAllow = "127.0.0.0/7"; c.ReplicationPassword = "r" },
			wantErr: []string{`RAMD_PG_HBA_ALLOW="127.0.0.0/7": allows addresses beyond loopback`}},
		{name: "tls cert without key", mod: func(c *pg.Config) { c.TLSCertFile = "/etc/ramd/pg.pem" },
			wantErr: []string{`RAMD_PG_TLS_CERTFILE="/etc/ramd/pg.pem": must be set together with RAMD_PG_TLS_KEYFILE`}},
		{name: "tls without ca", mod: func(c *pg.Config) { c.TLSCertFile, c.TLSKeyFile = "/etc/ramd/pg.pem", "/etc/ramd/pg.key" },
			wantErr: []string{`RAMD_PG_TLS_CAFILE="": is required with TLS`}},
		{name: "tls files that do not load", mod: func(c *pg.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile = "/nonexistent/pg.pem", "/nonexistent/pg.key", "/nonexistent/ca.pem"
		}, wantErr: []string{`RAMD_PG_TLS_CERTFILE="/nonexistent/pg.pem": does not load`, `RAMD_PG_TLS_CAFILE="/nonexistent/ca.pem"`}},
		{name: "tls ca alone", mod: func(c *pg.Config) { c.TLSCAFile = "/etc/ramd/ca.pem" },
			wantErr: []string{`RAMD_PG_TLS_CAFILE="/etc/ramd/ca.pem": needs RAMD_PG_TLS_CERTFILE`}},
		{name: "replication cert without key", mod: func(c *pg.Config) { c.TLSReplicationCertFile = "/etc/ramd/repl.pem" },
			wantErr: []string{`RAMD_PG_TLS_REPLICATION_CERTFILE="/etc/ramd/repl.pem": must be set together with RAMD_PG_TLS_REPLICATION_KEYFILE`}},
		{name: "replication cert without TLS", mod: func(c *pg.Config) {
			c.TLSReplicationCertFile, c.TLSReplicationKeyFile = "/etc/ramd/repl.pem", "/etc/ramd/repl.key"
		}, wantErr: []string{`RAMD_PG_TLS_REPLICATION_CERTFILE="/etc/ramd/repl.pem": needs TLS`}},
		{name: "bad tls verify", mod: func(c *pg.Config) { c.TLSVerify = "require" },
			wantErr: []string{`RAMD_PG_TLS_VERIFY="require": must be verify-full or verify-ca`}},
		{name: "wal dir", mod: func(c *pg.Config) { c.WALDir = "/var/lib/ramd/wal/pg_wal" }},
		{name: "wal dir relative", mod: func(c *pg.Config) { c.WALDir = "wal" },
			wantErr: []string{`RAMD_PG_WAL_DIR="wal": must be an absolute path`}},
		{name: "wal dir root", mod: func(c *pg.Config) { c.WALDir = "/" },
			wantErr: []string{`RAMD_PG_WAL_DIR="/": must not be the root directory`}},
		{name: "wal dir inside data dir", mod: func(c *pg.Config) { c.WALDir = "/var/lib/ramd/data/pg_wal" },
			wantErr: []string{`RAMD_PG_WAL_DIR="/var/lib/ramd/data/pg_wal": must be outside RAMD_DATA_DIR and not contain it`}},
		{name: "wal dir is the data dir", mod: func(c *pg.Config) { c.WALDir = "/var/lib/ramd/data/" },
			wantErr: []string{`RAMD_PG_WAL_DIR="/var/lib/ramd/data/": must be outside RAMD_DATA_DIR`}},
		{name: "wal dir contains data dir", mod: func(c *pg.Config) { c.WALDir = "/var/lib" },
			wantErr: []string{`RAMD_PG_WAL_DIR="/var/lib": must be outside RAMD_DATA_DIR and not contain it`}},
		{name: "wal dir beside data dir with a common prefix", mod: func(c *pg.Config) { c.WALDir = "/var/lib/ramd/data-wal" }},
		{name: "wal dir with a newline", mod: func(c *pg.Config) { c.WALDir = "/var/wal\n" },
			wantErr: []string{`RAMD_PG_WAL_DIR="/var/wal\n": must not contain control characters`}},
		{name: "several problems at once", mod: func(c *pg.Config) { c.Port = 0x10000; c.HBAAllow = "x" },
			wantErr: []string{"RAMD_PG_PORT", "RAMD_PG_HBA_ALLOW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.mod(&c)
			err := c.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, pg.ErrInvalidConfig) {
				t.Fatalf("Validate = %v; want ErrInvalidConfig", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "a\nb") {
				t.Errorf("Validate leaks the password: %q", err)
			}
		})
	}
}

func TestConfigLogValueRedactsPasswords(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	logger := slog.New(slog.NewTextHandler(&b, nil))
	logger.Info("config", "pg", pg.Config{DataDir: "/d", SuperuserPassword: "topsecret1", ReplicationPassword: "topsecret2"})
	out := b.String()
	if strings.Contains(out, "topsecret") {
		t.Errorf("log leaks a password: %s", out)
	}
	if !strings.Contains(out, "pg.superuser_password=REDACTED") || !strings.Contains(out, "pg.data_dir=/d") {
		t.Errorf("log lacks expected fields: %s", out)
	}
}

func TestConnParamsDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   pg.ConnParams
		want string
	}{
		{name: "full", in: pg.ConnParams{Host: "127.0.0.1", Port: 5432, User: "postgres", Password: "pw", DBName: "app"},
			want: "host='127.0.0.1' port='5432' user='postgres' password='pw' dbname='app' connect_timeout=2"},
		{name: "default database, no password", in: pg.ConnParams{Host: "h", Port: 1, User: "u"},
			want: "host='h' port='1' user='u' dbname='postgres' connect_timeout=2"},
		{name: "quoting", in: pg.ConnParams{Host: "h", Port: 1, User: "u", Password: `a'b\c d`},
			want: `host='h' port='1' user='u' password='a\'b\\c d' dbname='postgres' connect_timeout=2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.in.DSN()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DSN (-want +got):\n%s", diff)
			}
			// libpq's grammar, as implemented by pgconn, reads the values back.
			cc, err := pgconn.ParseConfig(got)
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", got, err)
			}
			wantDB := tt.in.DBName
			if wantDB == "" {
				wantDB = "postgres"
			}
			type parsed struct {
				Host, User, Password, DB string
				Port                     uint16
			}
			want := parsed{tt.in.Host, tt.in.User, tt.in.Password, wantDB, uint16(tt.in.Port)}
			if diff := cmp.Diff(want, parsed{cc.Host, cc.User, cc.Password, cc.Database, cc.Port}); diff != "" {
				t.Errorf("parsed back (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrimaryConnInfo(t *testing.T) {
	t.Parallel()
	src := pg.ConnParams{Host: "10.0.0.1", Port: 5433, User: "replicator", Password: `p'w`, DBName: "ignored"}
	got := pg.PrimaryConnInfo(src, "node-2")
	want := `host='10.0.0.1' port='5433' user='replicator' password='p\'w' application_name='node-2' ` +
		`connect_timeout=2 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PrimaryConnInfo (-want +got):\n%s", diff)
	}
	cc, err := pgconn.ParseConfig(got)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cc.Password != `p'w` || cc.Port != 5433 || cc.RuntimeParams["application_name"] != "node-2" {
		t.Errorf("parsed back: password %q port %d application_name %q", cc.Password, cc.Port, cc.RuntimeParams["application_name"])
	}
}

func TestIsWALLeftover(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"000000010000000000000001":                 true,
		"00000002000000000000000A.partial":         true,
		"000000010000000000000002.00000028.backup": true,
		"00000002.history":                         true,
		"archive_status":                           true,
		"summaries":                                true,
		"lost+found":                               false,
		"PG_VERSION":                               false,
		"base":                                     false,
		"00000001000000000000001":                  false, // 23 digits
		"000000010000000000000001.tmp":             false,
		"0000000100000000000000ab":                 false, // lower case
		"notes.txt":                                false,
		"":                                         false,
		"000000010000000000000001.partial.000000010000000": false,
	} {
		if got := pg.IsWALLeftover(name); got != want {
			t.Errorf("IsWALLeftover(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseTimelineHistory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []pg.TimelineSwitch
		wantErr bool
	}{
		{name: "empty (timeline 1 has no file)", in: "", want: nil},
		{name: "one switch, as PostgreSQL writes it", in: "1\t0/5000148\tno recovery target specified\n",
			want: []pg.TimelineSwitch{{Parent: 1, LSN: 0x5000148}}},
		{name: "three generations", in: "1\t0/5000148\tno recovery target specified\n\n2\t0/7000060\tno recovery target specified\n3\t1/A0\tbefore 2026-12-04\n",
			want: []pg.TimelineSwitch{{Parent: 1, LSN: 0x5000148}, {Parent: 2, LSN: 0x7000060}, {Parent: 3, LSN: 1<<32 | 0xA0}}},
		{name: "comments and spaces", in: "# a comment\n  1 0/5000148 reason with spaces\n", want: []pg.TimelineSwitch{{Parent: 1, LSN: 0x5000148}}},
		{name: "timeline skipped (a restore)", in: "1\t0/3000000\tx\n4\t0/4000000\tx\n",
			want: []pg.TimelineSwitch{{Parent: 1, LSN: 0x3000000}, {Parent: 4, LSN: 0x4000000}}},
		{name: "no lsn", in: "1\n", wantErr: true},
		{name: "bad lsn", in: "1\tzz\tx\n", wantErr: true},
		{name: "timeline zero", in: "0\t0/1\tx\n", wantErr: true},
		{name: "not a number", in: "one\t0/1\tx\n", wantErr: true},
		{name: "descending", in: "2\t0/5\tx\n1\t0/6\tx\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pg.ParseTimelineHistory(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseTimelineHistory(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, pg.ErrBadHistory) {
					t.Errorf("error %v does not wrap ErrBadHistory", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseTimelineHistory(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestHasSlots(t *testing.T) {
	t.Parallel()
	slots := []pg.Slot{{Name: "ramd_n1"}, {Name: "ramd_n2", Active: true}}
	for _, tc := range []struct {
		names []string
		want  bool
	}{
		{nil, true},
		{[]string{"ramd_n1"}, true},
		{[]string{"ramd_n2", "ramd_n1"}, true},
		{[]string{"ramd_n1", "ramd_n3"}, false},
		{[]string{"ramd_n"}, false},
	} {
		if got := pg.HasSlots(slots, tc.names); got != tc.want {
			t.Errorf("HasSlots(%v) = %v, want %v", tc.names, got, tc.want)
		}
	}
	if pg.HasSlots(nil, []string{"ramd_n1"}) {
		t.Error("HasSlots(no slots listed, one wanted) = true")
	}
}
