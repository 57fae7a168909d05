package api

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxSecretFile bounds what a secret file may hold: a password is a line, not a document.
const maxSecretFile = 64 << 10

// ReadSecretFiles fills Password and Token from RAMD_API_PASSWORD_FILE and
// RAMD_API_TOKEN_FILE when those are set: the file's contents without one trailing line
// break. Setting a variable and its _FILE variant together is an error; no error shows a
// secret.
func (c *Config) ReadSecretFiles() error {
	var errs []error
	read := func(env, file string, dst *string) {
		if file == "" {
			return
		}
		if *dst != "" {
			errs = append(errs, fmt.Errorf("%w: %s and %s_FILE are both set: set one", ErrInvalidConfig, env, env))
			return
		}
		s, err := readSecretFile(file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s_FILE=%q: %w", ErrInvalidConfig, env, file, err))
			return
		}
		*dst = s
	}
	read("RAMD_API_PASSWORD", c.PasswordFile, &c.Password)
	read("RAMD_API_TOKEN", c.TokenFile, &c.Token)
	return errors.Join(errs...)
}

func readSecretFile(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", errors.New("must be an absolute path")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		return "", err
	case len(b) > maxSecretFile:
		return "", fmt.Errorf("the file is larger than %d bytes", maxSecretFile)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", errors.New("the file is empty")
	}
	return s, nil
}
