package daemon

import "testing"

func TestConnURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host     string
		port     int
		tls      bool
		want     string
		wantHost string
	}{
		{"10.0.0.5", 5432, false, "postgres://10.0.0.5:5432/postgres", "10.0.0.5"},
		{"10.0.0.5", 5433, true, "postgres://10.0.0.5:5433/postgres?sslmode=require", "10.0.0.5"},
		{"::1", 5432, true, "postgres://[::1]:5432/postgres?sslmode=require", "::1"},
		{"db1.example", 6432, false, "postgres://db1.example:6432/postgres", "db1.example"},
	} {
		got := connURL(tt.host, tt.port, tt.tls)
		if got != tt.want {
			t.Errorf("connURL(%q, %d, %v) = %q, want %q", tt.host, tt.port, tt.tls, got, tt.want)
		}
		// What members read back from a published conn_url is the address, with or without
		// the query.
		if h, p := connHostPort(got); h != tt.wantHost || p != tt.port {
			t.Errorf("connHostPort(%q) = %q, %d", got, h, p)
		}
	}
}
