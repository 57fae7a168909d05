# Example site values for ramd.nomad.hcl (three clients, exec driver, host volumes).
# On client N (0, 1, 2) the Nomad client configuration declares its volume, owned by postgres:
#   client { host_volume "ramd-data[N]" { path = "/srv/ramd/N" } }
scope       = "pg-main"
datacenters = ["dc1"]
hba_allow   = "10.10.0.0/24"
extra_env = {
  RAMD_TAGS                   = "failover_priority:1"
  OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:4318"
}
