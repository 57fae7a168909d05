// Package deploy holds what a host deployment of ramd needs: the systemd unit and its
// environment file, the container image's Dockerfile, the Consul client agent's
// configuration and ramd's ACL policy, and an HAProxy configuration. Its tests check them
// (systemd-analyze, haproxy -c, consul validate where installed, a Dockerfile lint) and
// keep the variables they use equal to ramd's configuration table.
package deploy
