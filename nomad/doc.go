// Package nomad holds ramd's Nomad job specs and the tests that check them with Nomad's own
// job parser (jobspec2 of Nomad v1.6.2). It is a Go module of its own so that Nomad's
// dependencies and replaces never reach the daemon's build.
package nomad
