package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ramd-project/ramd/api/client"
)

// Timeouts of one request to one member.
const (
	// requestTimeout bounds a read.
	requestTimeout = client.DefaultReadTimeout
	// writeTimeout bounds one mutating request: a switchover answers only once the new
	// leader took over, which takes seconds, not the milliseconds of a read.
	writeTimeout = client.DefaultWriteTimeout
	// jobReadTimeout bounds one read of a followed job.
	jobReadTimeout = 10 * time.Second
)

// newClient is a client of the API at urls with reads bounded by readTimeout and the
// credentials and TLS settings of the environment: RAMD_API_TOKEN, or RAMD_API_USERNAME and
// RAMD_API_PASSWORD (members with RAMD_API_AUTH_READS protect reads too), and apiTransport.
func newClient(urls []string, readTimeout time.Duration) *client.Client {
	return client.New(urls, client.Options{
		Token:        os.Getenv("RAMD_API_TOKEN"),
		Username:     os.Getenv("RAMD_API_USERNAME"),
		Password:     os.Getenv("RAMD_API_PASSWORD"),
		Transport:    apiTransport(),
		ReadTimeout:  readTimeout,
		WriteTimeout: writeTimeout,
	})
}

// report ends a command: exit 1 with err on stderr, else exit 0.
func report(stderr io.Writer, err error) int {
	if err != nil {
		fmt.Fprintf(stderr, "ramctrl: %v\n", err)
		return exitError
	}
	return exitOK
}
