// Package pg owns everything that touches the local PostgreSQL server: initdb, the managed
// configuration files, starting the postmaster as a child process (as an unprivileged OS user
// when ramd runs as root), stopping, promoting, pg_basebackup, pg_rewind, replication slots
// and the status queries that the HA loop observes. It asks the server what it is
// (server_version_num, pg_is_in_recovery, the LSN functions) instead of assuming a version.
package pg
