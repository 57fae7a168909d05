package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/observability"
	"github.com/ramd-project/ramd/routing"
)

// Config is ramd's whole static configuration, composed from each package's own.
type Config struct {
	Node    daemon.Config
	PG      pg.Config
	Consul  consul.Config
	API     api.Config
	Routing routing.Config
	Log     observability.Config
}

// loadConfig reads the environment through lookuper and fills derived defaults.
func loadConfig(ctx context.Context, l envconfig.Lookuper) (Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return c, variableError(err, l)
	}
	if c.Node.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("RAMD_NAME is unset and the host name is unknown: %w", err)
		}
		c.Node.Name = h
	}
	if c.Node.APIURL == "" {
		scheme := "http://"
		if c.API.TLSEnabled() {
			scheme = "https://"
		}
		c.Node.APIURL = scheme + c.API.Listen
	}
	// Secrets from files (RAMD_*_PASSWORD_FILE, RAMD_API_TOKEN_FILE), read once here;
	// CONSUL_HTTP_TOKEN_FILE is read by the Consul client.
	if err := errors.Join(c.PG.ReadSecretFiles(), c.API.ReadSecretFiles()); err != nil {
		return c, err
	}
	return c, nil
}

// variableError rewrites an error of go-envconfig, which names the Go field ("Node: TTL:
// time: invalid duration ..."), to name the variable the user set and its value; a missing
// required variable says what it is for.
func variableError(err error, l envconfig.Lookuper) error {
	for _, v := range Variables() {
		if !strings.HasPrefix(err.Error(), v.path+":") {
			continue
		}
		if errors.Is(err, envconfig.ErrMissingRequired) {
			return &variableErr{msg: fmt.Sprintf("%s is required: %s", v.Name, descriptions[v.Name]), err: err}
		}
		val, _ := l.Lookup(v.Name)
		return &variableErr{msg: fmt.Sprintf("%s=%q: %s", v.Name, val, strings.TrimPrefix(err.Error(), v.path+": ")), err: err}
	}
	return fmt.Errorf("read environment: %w", err)
}

// variableErr is an environment error worded for the user, wrapping go-envconfig's.
type variableErr struct {
	msg string
	err error
}

func (e *variableErr) Error() string { return e.msg }
func (e *variableErr) Unwrap() error { return e.err }

// Validate checks every part; the first error names the variable, the value and the rule.
func (c Config) Validate() error {
	for _, v := range []interface{ Validate() error }{c.Node, c.PG, c.API, c.Routing, c.Log} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if c.Consul.Timeout <= 0 || c.Consul.Timeout > c.Node.RetryTimeout*10 {
		return fmt.Errorf("RAMD_CONSUL_TIMEOUT=%s: must be positive and at most 10 x RAMD_RETRY_TIMEOUT", c.Consul.Timeout)
	}
	return nil
}

// Variable is one environment variable ramd reads.
type Variable struct {
	Name     string
	Default  string
	Required bool
	path     string // "Node: TTL", as go-envconfig names the field in errors
}

// Variables lists every variable of Config from its struct tags, in declaration order.
func Variables() []Variable {
	var out []Variable
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("env")
			if !ok {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type, path+f.Name+": ")
				}
				continue
			}
			parts := strings.Split(tag, ",")
			v := Variable{Name: strings.TrimSpace(parts[0]), path: path + f.Name}
			for _, p := range parts[1:] {
				p = strings.TrimSpace(p)
				switch {
				case strings.HasPrefix(p, "default="):
					v.Default = strings.TrimPrefix(p, "default=")
				case p == "required":
					v.Required = true
				}
			}
			out = append(out, v)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}
