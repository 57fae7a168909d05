package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestEndpointPrecedence: --api, then $RAMD_API_URL, then Consul discovery, then the default.
// Discovery against a real agent is in test/integration (TestRamctrl).
func TestEndpointPrecedence(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(nil)
	consulDown := strings.TrimPrefix(down.URL, "http://")
	down.Close()
	tests := []struct {
		name      string
		ep        endpoint
		envAPI    string
		env       map[string]string
		want      string
		usage     bool   // the error is the operator's (exit 2)
		errSubstr string // a runtime error (exit 1) containing this
	}{
		{name: "default", want: defaultAPI},
		{name: "--api wins", ep: endpoint{api: "h1:1,h2:2", consul: consulDown}, envAPI: "h3:3", want: "http://h1:1,http://h2:2"},
		{name: "RAMD_API_URL before Consul", ep: endpoint{scope: "s"}, envAPI: "h3:3", env: map[string]string{"CONSUL_HTTP_ADDR": consulDown}, want: "http://h3:3"},
		{name: "bad --api", ep: endpoint{api: "ftp://x"}, usage: true},
		{
			name: "--scope asks Consul", ep: endpoint{scope: "pg", consul: consulDown},
			errSubstr: "discover the API from service/pg/members/ in Consul at " + consulDown,
		},
		{
			name: "CONSUL_HTTP_ADDR and RAMD_NAMESPACE from the environment", env: map[string]string{"CONSUL_HTTP_ADDR": consulDown, "RAMD_NAMESPACE": "/db/"},
			errSubstr: "discover the API from db/ramd/members/",
		},
		{
			name: "RAMD_SCOPE alone uses the local agent", env: map[string]string{"RAMD_SCOPE": "x", "CONSUL_HTTP_ADDR": ""},
			errSubstr: "x/members/ in Consul at 127.0.0.1:8500",
		},
		{name: "bad Consul setting", ep: endpoint{scope: "pg"}, env: map[string]string{"RAMD_CONSUL_TIMEOUT": "soon"}, usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := tt.ep.urls(ctx, tt.envAPI, lookup)
			var ue usageError
			switch {
			case tt.usage:
				if !errors.As(err, &ue) {
					t.Errorf("err = %v, want a usage error", err)
				}
			case tt.errSubstr != "":
				if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), tt.errSubstr) {
					t.Errorf("err = %v, want a runtime error containing %q", err, tt.errSubstr)
				}
			case err != nil:
				t.Errorf("err = %v", err)
			case strings.Join(got, ",") != tt.want:
				t.Errorf("urls = %v, want %s", got, tt.want)
			}
		})
	}
}
