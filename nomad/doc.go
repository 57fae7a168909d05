// Package nomad holds ramd's Nomad job specs and the test that validates them.
package nomad
