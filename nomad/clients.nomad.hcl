# Two example applications that find ramd's primary the two ways Consul offers; each writes a
# heartbeat row every 10 s. The database password comes from the Nomad Variable
# nomad/jobs/ramd-clients (key password).
#
# Group "mesh": through the Consul service mesh. Its sidecar's upstream names the redirect
# resolver <service>-primary, which ramd's leader keeps pointing at subset "primary" of the
# PostgreSQL service (docs/ROUTING.md). The cluster must run with RAMD_MESH=true (extra_env
# of ramd.nomad.hcl) and an Envoy beside each member (docs/DEPLOYMENT.md); allow the
# application with an intention: consul intention create ramd-clients-mesh <service>
#
# Group "dns": through Consul DNS. primary.<service>.service.consul names the primary alone.
# The clients' resolver must forward the .consul domain to the local Consul agent (port 8600,
# docs/DEPLOYMENT.md). psql does not read SRV records, so it relies on the port the ramd job
# fixes (5432).

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "service" {
  type        = string
  default     = "pg-main"
  description = "ramd's Consul service (RAMD_SERVICE_NAME, else the scope)."
}

variable "image" {
  type        = string
  default     = "postgres:16-bookworm"
  description = "mesh group: any image with psql."
}

variable "db_user" {
  type    = string
  default = "app"
}

locals {
  heartbeat = <<-EOT
    psql -c 'CREATE TABLE IF NOT EXISTS heartbeat (at timestamptz DEFAULT now())'
    while sleep 10; do psql -c 'INSERT INTO heartbeat DEFAULT VALUES' || true; done
  EOT
  password  = <<-EOT
    {{- with nomadVar "nomad/jobs/ramd-clients" }}
    PGPASSWORD={{ .password.Value | toJSON }}
    {{- end }}
  EOT
}

job "ramd-clients" {
  datacenters = var.datacenters
  type        = "service"

  group "mesh" {
    network {
      mode = "bridge"
    }

    service {
      name = "ramd-clients-mesh"

      connect {
        sidecar_service {
          proxy {
            # Writes go to the primary, reads to healthy replicas within the lag limit.
            upstreams {
              destination_name = "${var.service}-primary"
              local_bind_port  = 5432
            }
            upstreams {
              destination_name = "${var.service}-replica"
              local_bind_port  = 5433
            }
          }
        }
      }
    }

    task "app" {
      driver = "docker"

      config {
        image   = var.image
        command = "sh"
        args    = ["-c", local.heartbeat]
      }

      env {
        PGHOST     = "127.0.0.1"
        PGPORT     = "5432"
        PGUSER     = var.db_user
        PGDATABASE = "postgres"
      }

      template {
        destination          = "secrets/db.env"
        env                  = true
        error_on_missing_key = true
        data                 = local.password
      }
    }
  }

  group "dns" {
    task "app" {
      # psql from the host's packages (postgresql-client).
      driver = "exec"

      config {
        command = "/bin/sh"
        args    = ["-c", local.heartbeat]
      }

      env {
        PGHOST            = "primary.${var.service}.service.consul"
        PGPORT            = "5432"
        PGUSER            = var.db_user
        PGDATABASE        = "postgres"
        PGCONNECT_TIMEOUT = "3"
        # Only a writable server will do: after a failover the name points elsewhere.
        PGTARGETSESSIONATTRS = "read-write"
      }

      template {
        destination          = "secrets/db.env"
        env                  = true
        error_on_missing_key = true
        data                 = local.password
      }
    }
  }
}
