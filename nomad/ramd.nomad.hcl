# ramd and PostgreSQL on Nomad, one job for three drivers:
# - exec (the default) or raw_exec: PostgreSQL from the host's packages (Debian's
#   postgresql-<N>), ramd from a binary installed on every client (ramd.vars.hcl);
# - docker: the image of deploy/Dockerfile, with host networking (ramd.docker.vars.hcl).
#
#   nomad var put nomad/jobs/ramd superuser_password=... replication_password=... \
#     api_username=... api_password=... [consul_token=...] [api_token=...]
#   nomad job run -var-file=ramd.vars.hcl ramd.nomad.hcl
#
# One member per Nomad client. Member N (allocation index N) keeps its data on the host
# volume "<volume_source>[N]", declared only on the client meant to hold it, so a member never
# starts anywhere without its data. ramd owns PostgreSQL's Consul service and its role tags;
# this job registers no Consul service (docs/DEPLOYMENT.md).

variable "job_id" {
  type        = string
  default     = "ramd"
  description = "Nomad job ID; the secrets are read from the Nomad Variable nomad/jobs/<job_id>."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "scope" {
  type        = string
  default     = "ramd"
  description = "Cluster name (RAMD_SCOPE); members are named <scope>-<allocation index>."
}

variable "count" {
  type        = number
  default     = 3
  description = "Members; one per client."
}

variable "distinct_hosts" {
  type        = bool
  default     = true
  description = "One member per client. Turn off only to run every member on one test machine."
}

variable "driver" {
  type        = string
  default     = "exec"
  description = "exec (isolated, runs as run_as), raw_exec (no isolation, no volume mounts) or docker."
  validation {
    condition     = contains(["exec", "raw_exec", "docker"], var.driver)
    error_message = "The driver must be exec, raw_exec or docker."
  }
}

variable "image" {
  type        = string
  default     = ""
  description = "docker only: the ramd image built from deploy/Dockerfile, pinned by tag or digest."
}

variable "run_as" {
  type        = string
  default     = "postgres"
  description = "OS account of the task (with docker: of the image). As root, ramd runs PostgreSQL as RAMD_PG_OS_USER (postgres)."
}

variable "ramd_command" {
  type        = string
  default     = "/usr/local/bin/ramd"
  description = "exec and raw_exec: the ramd binary on the clients (inside the exec chroot: below /usr)."
}

variable "volume_type" {
  type        = string
  default     = "host"
  description = "host (a host volume per member) or csi (a CSI volume per member; not with raw_exec)."
  validation {
    condition     = contains(["host", "csi"], var.volume_type)
    error_message = "The volume type must be host or csi."
  }
}

variable "volume_source" {
  type        = string
  default     = "ramd-data"
  description = "Volume name; member N uses <volume_source>[N] (per_alloc)."
}

variable "raw_exec_data_root" {
  type        = string
  default     = "/srv/ramd"
  description = "raw_exec only (it cannot mount): the host path of volume <volume_source>[N] is <raw_exec_data_root>/<N>."
}

variable "pg_port" {
  type        = number
  default     = 5432
  description = "PostgreSQL port (0: a dynamic port, for tests with several members per client)."
}

variable "api_port" {
  type        = number
  default     = 8008
  description = "REST API port (0: a dynamic port)."
}

variable "hba_allow" {
  type        = string
  description = "CIDRs allowed to connect to PostgreSQL (RAMD_PG_HBA_ALLOW): the members and the clients."
}

variable "consul_http_addr" {
  type        = string
  default     = "127.0.0.1:8500"
  description = "The local Consul client agent (never a server agent)."
}

variable "handover_wait" {
  type        = string
  default     = "5s"
  description = "RAMD_HANDOVER_WAIT; kill_timeout below leaves room for it and PostgreSQL's shutdown."
}

variable "extra_env" {
  type        = map(string)
  default     = {}
  description = "Further RAMD_*, CONSUL_* (not the token) and OTEL_* settings, e.g. RAMD_TAGS."
}

variable "cpu" {
  type    = number
  default = 1000
}

variable "memory" {
  type        = number
  default     = 2048
  description = "MiB; Nomad kills the task above it, so it must hold shared_buffers and work_mem peaks."
}

locals {
  # Where the data volume appears in the task, and the data directory inside it.
  mount_path = "/var/lib/ramd"
  data_dir   = var.driver == "raw_exec" ? "${var.raw_exec_data_root}/${NOMAD_ALLOC_INDEX}/pgdata" : "/var/lib/ramd/pgdata"
}

job "ramd" {
  id          = var.job_id
  datacenters = var.datacenters
  type        = "service"

  group "db" {
    count = var.count

    # One member per client: two members on one host would fail together.
    constraint {
      operator = "distinct_hosts"
      value    = var.distinct_hosts ? "true" : "false"
    }

    # Member N only runs where volume <volume_source>[N] is, that is, beside its data.
    volume "data" {
      type            = var.volume_type
      source          = var.volume_source
      per_alloc       = true
      attachment_mode = var.volume_type == "csi" ? "file-system" : ""
      access_mode     = var.volume_type == "csi" ? "single-node-writer" : ""
    }

    network {
      port "pg" {
        static = var.pg_port
      }
      port "api" {
        static = var.api_port
      }
    }

    # A failing member restarts in place, forever, with a pause between tries: its data is
    # here, and a member moved to another host would have to clone everything again. mode
    # "delay" never marks the allocation failed, so the reschedule policy below never fires.
    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    # Never place a failed member elsewhere: ramd already fails over to a replica in seconds,
    # and a copy of the data cannot follow the allocation to another host.
    reschedule {
      attempts  = 0
      unlimited = false
    }

    # One member at a time, and the next only once the new one is ready (/readiness: the
    # leader, or a replica streaming within maximum_lag_on_failover). The old primary hands
    # over on SIGTERM (kill_signal below) before it stops; docs/DEPLOYMENT.md shows how to
    # make it the last member replaced. No auto_revert: reverting would be a second rolling
    # restart; an operator decides.
    update {
      max_parallel      = 1
      health_check      = "checks"
      min_healthy_time  = "10s"
      healthy_deadline  = "30m"
      progress_deadline = "45m"
      auto_revert       = false
    }

    # Node drains move one member at a time, with the same gate.
    migrate {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "30m"
    }

    # ramd's API in Nomad's own service catalog (provider "nomad": nothing is written to
    # Consul, where ramd alone registers PostgreSQL with its role tags). Both checks gate
    # deployments (readiness is the one that matters: a new member counts only once it
    # streams); liveness restarts a member whose HA loop is stuck.
    service {
      provider = "nomad"
      name     = "${var.scope}-ramd-api"
      port     = "api"

      check {
        name      = "readiness"
        type      = "http"
        path      = "/readiness"
        interval  = "5s"
        timeout   = "2s"
        on_update = "require_healthy"
      }

      check {
        name     = "liveness"
        type     = "http"
        path     = "/liveness"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 6
          grace = "2m"
        }
      }
    }

    task "ramd" {
      driver = var.driver
      user   = var.run_as

      # One config block, the chosen driver's.
      dynamic "config" {
        for_each = var.driver == "docker" ? [] : [var.ramd_command]
        content {
          command = config.value
        }
      }
      dynamic "config" {
        for_each = var.driver == "docker" ? [var.image] : []
        content {
          image        = config.value
          network_mode = "host"
        }
      }

      dynamic "volume_mount" {
        for_each = var.driver == "raw_exec" ? [] : [local.mount_path]
        content {
          volume      = "data"
          destination = volume_mount.value
        }
      }

      # SIGTERM makes a primary stop PostgreSQL, release the lock and wait up to
      # RAMD_HANDOVER_WAIT for a replica to take it; a replica stops PostgreSQL. The timeout
      # covers the handover wait, a fast shutdown with its checkpoint, and Consul clean-up.
      # Nomad clients cap it at max_kill_timeout (30s by default): raise that to 60s.
      kill_signal  = "SIGTERM"
      kill_timeout = "45s"

      env {
        RAMD_SCOPE         = var.scope
        RAMD_NAME          = "${var.scope}-${NOMAD_ALLOC_INDEX}"
        RAMD_DATA_DIR      = local.data_dir
        RAMD_PG_LISTEN     = "${NOMAD_IP_pg}"
        RAMD_PG_PORT       = "${NOMAD_PORT_pg}"
        RAMD_PG_HBA_ALLOW  = var.hba_allow
        RAMD_API_LISTEN    = "${NOMAD_ADDR_api}"
        RAMD_HANDOVER_WAIT = var.handover_wait
        RAMD_LOG_FORMAT    = "json"
        CONSUL_HTTP_ADDR   = var.consul_http_addr
      }

      # Secrets from the Nomad Variable nomad/jobs/<job_id>, which this job's tasks may read
      # without any policy. The task does not start before it exists. A change is not
      # applied by restarting every member at once (change_mode "noop"): change the roles in
      # PostgreSQL first, then roll the job (docs/DEPLOYMENT.md).
      template {
        destination          = "secrets/ramd.env"
        env                  = true
        change_mode          = "noop"
        error_on_missing_key = true
        data                 = <<-EOT
          {{- with nomadVar "nomad/jobs/${var.job_id}" }}
          RAMD_PG_SUPERUSER_PASSWORD={{ .superuser_password.Value | toJSON }}
          RAMD_PG_REPLICATION_PASSWORD={{ .replication_password.Value | toJSON }}
          RAMD_API_USERNAME={{ .api_username.Value | toJSON }}
          RAMD_API_PASSWORD={{ .api_password.Value | toJSON }}
          {{- range .Tuples }}
          {{- if eq .K "consul_token" }}
          CONSUL_HTTP_TOKEN={{ .V | toJSON }}
          {{- else if eq .K "api_token" }}
          RAMD_API_TOKEN={{ .V | toJSON }}
          {{- end }}
          {{- end }}
          {{- end }}
        EOT
      }

      # Site settings from var.extra_env, one KEY="value" line each.
      template {
        destination = "local/extra.env"
        env         = true
        change_mode = "noop"
        data        = join("", [for k, v in var.extra_env : "${k}=${jsonencode(v)}\n"])
      }

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
