package pg

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Passwords are the superuser's and the replication role's passwords.
type Passwords struct {
	Superuser, Replication string
}

// passwords returns the passwords in force.
func (i *Instance) passwords() Passwords {
	i.pwMu.Lock()
	defer i.pwMu.Unlock()
	return i.pw
}

// RotatePasswords makes next the passwords in force. On a primary (primary true) it first
// gives both roles the new passwords, connected with the old ones, so the server and ramd
// never disagree; standbys receive the roles through replication, and their ramd only
// switches. Callers rewrite primary_conninfo afterwards (a standby's walreceiver then
// reconnects with the new replication password). An empty password in next keeps the old.
func (i *Instance) RotatePasswords(ctx context.Context, next Passwords, primary bool) error {
	cur := i.passwords()
	if next.Superuser == "" {
		next.Superuser = cur.Superuser
	}
	if next.Replication == "" {
		next.Replication = cur.Replication
	}
	if next == cur {
		return nil
	}
	if primary {
		conn, err := i.connect(ctx)
		if err != nil {
			return fmt.Errorf("rotate passwords: %w", err)
		}
		defer conn.Release()
		if err := i.setRoles(ctx, conn, next); err != nil {
			return fmt.Errorf("rotate passwords: %w", err)
		}
	}
	i.pwMu.Lock()
	i.pw = next
	i.pwMu.Unlock()
	i.resetPool() // the next read connects with the new password, which proves it
	return nil
}

// roleSecret is what ALTER ROLE ... PASSWORD receives for password: its SCRAM verifier, or
// the password itself when it is not ASCII (PostgreSQL normalises those with SASLprep,
// which this package does not implement); the statements are never logged either way.
func roleSecret(password string) (string, error) {
	for _, r := range password {
		if r >= 0x80 {
			return password, nil
		}
	}
	return scramVerifier(password)
}

// scramIterations is PostgreSQL's default scram_iterations (4096): a client pays it once
// per connection, so raising it slows every connection ramd and the clients make.
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 secret PostgreSQL stores for password (RFC 5802
// and 7677, in PostgreSQL's text form SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:
// <ServerKey>), so ALTER ROLE ... PASSWORD never carries the password itself. PostgreSQL
// recognises the form and stores it as given. The password is used as is (PostgreSQL
// applies SASLprep, which leaves ASCII unchanged).
func scramVerifier(password string) (string, error) {
	if password == "" {
		return "", errors.New("scram verifier: empty password")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("scram verifier: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("scram verifier: %w", err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(server)), nil
}
