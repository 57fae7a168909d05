package pg

import (
	"context"
	"fmt"
)

// Setting returns the value of a configuration parameter as the running server has it (SHOW).
func (i *Instance) Setting(ctx context.Context, name string) (string, error) {
	if !gucNameRe.MatchString(name) {
		return "", fmt.Errorf("show %q: %w", name, ErrInvalidParameter)
	}
	conn, err := i.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	var v string
	if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		return "", fmt.Errorf("show %s: %w", name, err)
	}
	return v, nil
}

// RemoteSetting returns a configuration parameter of another member's server.
func RemoteSetting(ctx context.Context, p ConnParams, name string) (string, error) {
	if !gucNameRe.MatchString(name) {
		return "", fmt.Errorf("show %q: %w", name, ErrInvalidParameter)
	}
	conn, err := connectTo(ctx, p)
	if err != nil {
		return "", err
	}
	defer closeConn(ctx, conn)
	var v string
	if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
		return "", fmt.Errorf("show %s on %s: %w", name, p, err)
	}
	return v, nil
}
