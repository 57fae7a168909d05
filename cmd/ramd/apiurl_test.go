package main

import (
	"maps"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

// TestAPIURLScheme checks the default RAMD_API_URL members publish: https once the API
// serves TLS, and an explicit value always wins.
func TestAPIURLScheme(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"plain", nil, "http://127.0.0.1:8008"},
		{"tls", map[string]string{"RAMD_API_CERTFILE": "api.pem", "RAMD_API_KEYFILE": "api-key.pem", "RAMD_API_LISTEN": "10.0.0.1:8008"}, "https://10.0.0.1:8008"},
		{"explicit", map[string]string{"RAMD_API_CERTFILE": "api.pem", "RAMD_API_KEYFILE": "api-key.pem", "RAMD_API_URL": "https://db1.example.internal:8008"}, "https://db1.example.internal:8008"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := baseEnv()
			maps.Copy(env, tt.env)
			c, err := loadConfig(t.Context(), envconfig.MapLookuper(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Node.APIURL != tt.want {
				t.Errorf("APIURL = %q, want %q", c.Node.APIURL, tt.want)
			}
		})
	}
}
