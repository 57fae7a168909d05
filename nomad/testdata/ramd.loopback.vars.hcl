# The end-to-end test's values: three members of ramd.nomad.hcl on one Nomad dev agent on
# loopback, with raw_exec, dynamic ports and host volumes ramd-data[0..2]. The test adds
# ramd_command, raw_exec_data_root and consul_http_addr with -var.
distinct_hosts = false
driver         = "raw_exec"
run_as         = "root"
pg_port        = 0
api_port       = 0
hba_allow      = "127.0.0.1/32"
handover_wait  = "5s"
cpu            = 200
memory         = 256
extra_env = {
  RAMD_LOG_LEVEL = "info"
}
