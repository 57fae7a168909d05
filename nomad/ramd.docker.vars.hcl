# Example site values for ramd.nomad.hcl with the docker driver and the image of
# deploy/Dockerfile. On client N (0, 1, 2) the Nomad client configuration declares its
# volume, owned by the image's postgres account (uid 999, gid 999):
#   client { host_volume "ramd-data[N]" { path = "/srv/ramd/N" } }
scope       = "pg-main"
datacenters = ["dc1"]
driver      = "docker"
image       = "registry.example.internal/ramd:0.1.0"
hba_allow   = "10.10.0.0/24"
