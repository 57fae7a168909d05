package consul

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ramd-project/ramd/test/testenv"
)

// TestPermissionDenied: against an agent whose ACL default policy is deny, a refused request
// wraps ErrPermissionDenied (never ErrUnavailable or ErrConflict) and says which token,
// which permission and where ramd's token comes from.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	a := testenv.StartConsul(t, testenv.ConsulOptions{ACLDefaultDeny: true})
	mgmt, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Token: a.Token})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	policy, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "kv-read-only",
		Rules: `key_prefix "ro/" { policy = "read" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	limited, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		call  func(c *Client) error
		says  []string
	}{
		{name: "no token", call: func(c *Client) error { return c.Store("ro", "pg").Put(ctx, KeyLeader, []byte("n1")) },
			says: []string{"no token was given", `key:write on "ro/pg/leader"`, "CONSUL_HTTP_TOKEN"}},
		{name: "unknown token", token: "00000000-0000-0000-0000-00000000000f",
			call: func(c *Client) error { _, err := c.Agent(ctx); return err },
			says: []string{"Consul does not know the token", "CONSUL_HTTP_TOKEN_FILE"}},
		{name: "token lacking a rule", token: limited.SecretID,
			call: func(c *Client) error {
				_, err := c.CreateSession(ctx, SessionOptions{TTL: 10 * time.Second, LockDelay: time.Millisecond})
				return err
			},
			says: []string{"the token lacks session:write"}},
		{name: "service registration", token: limited.SecretID,
			call: func(c *Client) error {
				return c.RegisterService(ctx, &api.AgentServiceRegistration{ID: "pg-n1", Name: "pg", Port: 5432})
			},
			says: []string{`the token lacks service:write on "pg"`}},
		{name: "prepared query", token: limited.SecretID,
			call: func(c *Client) error {
				_, err := c.PutPreparedQuery(ctx, &api.PreparedQueryDefinition{Name: "pg-primary", Service: api.ServiceQuery{Service: "pg"}})
				return err
			},
			says: []string{`the token lacks query:write on "pg-primary"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(Config{Addr: a.HTTPAddr, Token: tt.token}, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.call(c)
			if !errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConflict) {
				t.Fatalf("err = %v, want ErrPermissionDenied only", err)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
