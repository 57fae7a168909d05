# The Consul client agent on every ramd host (never a server agent: a session made through a
# server dies with that server; ramd warns at start). Three or five Consul servers run
# elsewhere. docs/DEPLOYMENT.md walks through the ACL and TLS set-up.
datacenter = "dc1"
data_dir   = "/opt/consul"
server     = false
node_name  = "db1"
bind_addr  = "10.10.0.11"
retry_join = ["10.10.0.2", "10.10.0.3", "10.10.0.4"]

# ramd and local tools talk to 127.0.0.1 only; HTTPS on 8501, plain HTTP off.
client_addr = "127.0.0.1"
ports {
  http     = -1
  https    = 8501
  dns      = 8600
  grpc     = -1
  grpc_tls = 8503
}

tls {
  defaults {
    ca_file         = "/etc/consul.d/tls/consul-agent-ca.pem"
    verify_outgoing = true
  }
  https {
    cert_file       = "/etc/consul.d/tls/dc1-client-consul-0.pem"
    key_file        = "/etc/consul.d/tls/dc1-client-consul-0-key.pem"
    verify_incoming = false
  }
  internal_rpc {
    verify_server_hostname = true
  }
}
auto_encrypt {
  tls = true
}

acl {
  enabled        = true
  default_policy = "deny"
  # The agent's own token (node:write on this node, service:read); set with
  # `consul acl set-agent-token agent <token>` rather than here.
  enable_token_persistence = true
}

# Service mesh for clients that use Connect upstreams (ramd with RAMD_MESH=true).
connect {
  enabled = true
}
