# ramd.nomad.hcl with the docker driver on CSI volumes: register one volume per member first,
# with IDs ramd-data[0], ramd-data[1], ramd-data[2] (nomad volume create),
# single-node-writer, file-system.
scope       = "pg-main"
datacenters = ["dc1"]
driver      = "docker"
image       = "registry.example.internal/ramd:0.1.0"
hba_allow   = "10.10.0.0/24"
volume_type = "csi"
