package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// descriptions explain each variable for --help. A test keeps it and the README's table
// equal to the struct tags.
var descriptions = map[string]string{
	"RAMD_SCOPE":                         "cluster name; Consul keys live under <namespace>/<scope>/",
	"RAMD_NAMESPACE":                     "Consul key namespace (Patroni's default)",
	"RAMD_NAME":                          "member name, unique in the cluster (default: host name)",
	"RAMD_API_URL":                       "URL other members use to reach this node's API (default: http://<RAMD_API_LISTEN>, https:// with RAMD_API_CERTFILE)",
	"RAMD_TTL":                           "bootstrap value of the cluster's ttl (leader heartbeat freshness: replicas race only after this long without one); the cluster's configuration wins once it exists",
	"RAMD_LOOP_WAIT":                     "bootstrap value of the cluster's loop_wait (interval between HA cycles)",
	"RAMD_RETRY_TIMEOUT":                 "bootstrap value of the cluster's retry_timeout (bound on one cycle's Consul calls)",
	"RAMD_FENCE_MARGIN":                  "bootstrap value of the cluster's fence_margin (a leader stops writes this long before replicas may race)",
	"RAMD_POSTGRES_UNRESPONSIVE_TIMEOUT": "bootstrap value of the cluster's postgres_unresponsive_timeout (a leader whose PostgreSQL runs but answers nothing for longer kills it and hands over; 0: off; default 30s, or 2 x (ttl + loop_wait) when longer)",
	"RAMD_LOCK_DELAY":                    "Consul lock-delay of ramd's sessions",
	"RAMD_SESSION_TTL":                   "Consul session TTL, the backstop behind the heartbeat (Consul's floor is 10s)",
	"RAMD_TAGS":                          "member tags as key:value pairs (nofailover, failover_priority, noloadbalance, clonefrom, nosync)",
	"RAMD_PG_MAX_START_FAILURES":         "failed starts of the leader's PostgreSQL before it hands over; also how many restarts in place within a minute (its server fenced or crashed while it kept the lock) make it hand over instead of restarting again",
	"RAMD_RECLONE_ON_REWIND_FAILURE":     "remove the data directory and clone again when pg_rewind fails",
	"RAMD_MEMBER_SLOTS_TTL":              "keep replication slots of departed members this long, unless the cluster's member_slots_ttl is set",
	"RAMD_HANDOVER_WAIT":                 "on SIGTERM a primary waits this long for a successor before exiting (not when every replica is stopping too)",
	"RAMD_SYNCHRONOUS_MODE":              "bootstrap value of the cluster's synchronous_mode: off, on (FIRST n) or quorum (ANY n); the cluster's configuration wins once it exists",
	"RAMD_SYNCHRONOUS_NODE_COUNT":        "bootstrap value of the cluster's synchronous_node_count (n above, 1 to 64)",
	"RAMD_BOOTSTRAP_CONFIG":              "JSON file: the dynamic configuration a new cluster starts with; its bootstrap object can restore another cluster's backup instead of initdb (docs/BACKUPS.md)",
	"RAMD_PG_BIN_DIR":                    "PostgreSQL binaries (default: from PATH, else the highest /usr/lib/postgresql/<N>/bin)",
	"RAMD_DATA_DIR":                      "PostgreSQL data directory, an absolute path",
	"RAMD_PG_WAL_DIR":                    "directory of pg_wal for a new data directory (initdb and pg_basebackup --waldir; pg_wal becomes a link to it), an absolute path outside the data directory",
	"RAMD_PG_LISTEN":                     "PostgreSQL listen address",
	"RAMD_PG_PORT":                       "PostgreSQL port",
	"RAMD_PG_CONNECT_ADDRESS":            "address other members and clients use to reach PostgreSQL (default: RAMD_PG_LISTEN)",
	"RAMD_PG_SOCKET_DIR":                 "unix socket directory, or none (default: <temp dir>/ramd-<hash of the data directory>, never the data directory; none when that path is too long for a socket)",
	"RAMD_PG_OS_USER":                    "OS account that runs PostgreSQL when ramd runs as root",
	"RAMD_PG_SUPERUSER":                  "database superuser ramd connects as",
	"RAMD_PG_SUPERUSER_PASSWORD":         "its password; required with RAMD_PG_REPLICATION_PASSWORD when RAMD_PG_HBA_ALLOW names more than loopback (unset on loopback: generated, docs/SECURITY.md)",
	"RAMD_PG_REPLICATION_USER":           "role replicas stream as",
	"RAMD_PG_REPLICATION_PASSWORD":       "its password (see RAMD_PG_SUPERUSER_PASSWORD)",
	"RAMD_PG_HBA_ALLOW":                  "comma-separated CIDRs allowed to connect (pg_hba.conf)",
	"RAMD_PG_LOG_FILE":                   "PostgreSQL server log (default: <data dir>.log)",
	"CONSUL_HTTP_ADDR":                   "local Consul agent address",
	"CONSUL_HTTP_TOKEN":                  "Consul ACL token",
	"CONSUL_HTTP_TOKEN_FILE":             "file holding the Consul ACL token",
	"CONSUL_HTTP_SSL":                    "talk HTTPS to Consul",
	"CONSUL_HTTP_SSL_VERIFY":             "verify Consul's TLS certificate",
	"CONSUL_CACERT":                      "CA certificate file for Consul TLS",
	"CONSUL_CAPATH":                      "directory of CA certificates for Consul TLS",
	"CONSUL_CLIENT_CERT":                 "client certificate for Consul TLS",
	"CONSUL_CLIENT_KEY":                  "client key for Consul TLS",
	"CONSUL_TLS_SERVER_NAME":             "server name to verify in Consul's certificate",
	"RAMD_CONSUL_DATACENTER":             "Consul datacenter (default: the agent's)",
	"RAMD_CONSUL_TIMEOUT":                "timeout of one Consul request",
	"RAMD_API_LISTEN":                    "REST API listen address",
	"RAMD_API_USERNAME":                  "basic-auth user required by the API's mutating endpoints (with RAMD_API_PASSWORD)",
	"RAMD_API_PASSWORD":                  "basic-auth password of RAMD_API_USERNAME",
	"RAMD_API_TOKEN":                     "bearer token accepted by the API's mutating endpoints",
	"RAMD_API_AUTH_READS":                "require the credentials on read-only endpoints too, except the health checks",
	"RAMD_API_OPEN":                      "the API takes no credentials on purpose: silences the warning when it listens on loopback only (not with credentials; never silent on other addresses)",
	"RAMD_API_CERTFILE":                  "PEM certificate of the API; with RAMD_API_KEYFILE turns on TLS (1.2 or later; read at start and on SIGHUP)",
	"RAMD_API_KEYFILE":                   "PEM private key of RAMD_API_CERTFILE",
	"RAMD_API_CAFILE":                    "PEM CA bundle for client certificates, also trusted for other members' API certificates (default: system pool)",
	"RAMD_API_VERIFY_CLIENT":             "client certificates: none, optional (verified when presented) or required (needs RAMD_API_CAFILE)",
	"RAMD_SERVICE_NAME":                  "Consul service name (default: the scope, sanitised for DNS)",
	"RAMD_SERVICE_TAGS":                  "extra tags on the service, comma-separated",
	"RAMD_SERVICE_DEREGISTER_AFTER":      "Consul removes a registration critical this long",
	"RAMD_LOG_FORMAT":                    "log format: text or json",
	"RAMD_LOG_LEVEL":                     "log level: debug, info, warn, error",

	// Secrets from files, TLS for PostgreSQL (docs/SECURITY.md).
	"RAMD_PG_SUPERUSER_PASSWORD_FILE":   "file holding RAMD_PG_SUPERUSER_PASSWORD (read at start and on SIGHUP, which rotates it)",
	"RAMD_PG_REPLICATION_PASSWORD_FILE": "file holding RAMD_PG_REPLICATION_PASSWORD (read at start and on SIGHUP, which rotates it)",
	"RAMD_API_PASSWORD_FILE":            "file holding RAMD_API_PASSWORD (read at start and on SIGHUP)",
	"RAMD_API_TOKEN_FILE":               "file holding RAMD_API_TOKEN (read at start and on SIGHUP)",
	"RAMD_PG_TLS_CERTFILE":              "PEM server certificate of PostgreSQL; with RAMD_PG_TLS_KEYFILE turns on TLS: ssl = on (TLS 1.2 or later), hostssl lines only, members verify each other (reloaded by POST /reload). Also the default server certificate of pgBackRest's TLS server (`backup.pgbackrest.tls_server`; pgBackRest 2.45 matches the member's address only as a DNS name or the common name)",
	"RAMD_PG_TLS_KEYFILE":               "PEM private key of RAMD_PG_TLS_CERTFILE (readable by the PostgreSQL account only)",
	"RAMD_PG_TLS_CAFILE":                "PEM CA bundle the members' certificates chain to (required with TLS); also the default CA of pgBackRest's TLS server",
	"RAMD_PG_TLS_VERIFY":                "sslmode of connections between members: verify-full (the certificate names the connect address) or verify-ca",
	"RAMD_PG_TLS_REPLICATION_CERTFILE":  "PEM client certificate the replication role presents when streaming and cloning (its common name is RAMD_PG_REPLICATION_USER); with TLS, the role then authenticates by certificate (pg_hba method cert) instead of its password",
	"RAMD_PG_TLS_REPLICATION_KEYFILE":   "PEM private key of RAMD_PG_TLS_REPLICATION_CERTFILE (readable by the PostgreSQL account only). The pair is also the default client certificate the leader presents to pgBackRest's TLS servers, which admit its common name for the stanza",

	// Routing (docs/ROUTING.md).
	"RAMD_REPLICA_MAX_LAG":             "replay lag in bytes above which a replica leaves replica.<service>; it returns under half of it (0: no limit)",
	"RAMD_PREPARED_QUERY_FAILOVER_DCS": "datacenters the prepared queries <service>-primary/-replica fail over to, comma-separated",
	"RAMD_MESH":                        "register a Connect sidecar; the leader writes the service-defaults and service-resolver (subsets primary, replica)",
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, `ramd keeps a PostgreSQL cluster highly available with Consul.

Usage:
  ramd            run the node agent (configured by environment variables)
  ramd --help     this text
  ramd --version  print the version

Environment variables (OpenTelemetry also reads the standard OTEL_* variables):`)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tDEFAULT\tMEANING")
	for _, v := range Variables() {
		def := v.Default
		if v.Required {
			def = "(required)"
		}
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Name, def, descriptions[v.Name])
	}
	_ = tw.Flush()
}
