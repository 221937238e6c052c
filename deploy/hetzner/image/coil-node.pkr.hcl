# Prebaked Coil snapshot: Debian 12 + the coil binary + systemd units + sysctl +
# node_exporter + acme.sh. Game nodes, matchmakers and the autoscaler boot from it, so
# a game node's cloud-init only writes two env files and the TLS pair: boot to ready in
# tens of seconds instead of the 5-10 minutes an apt-based cloud-init takes.
#
#   export HCLOUD_TOKEN=...            # read & write token of the project
#   cargo build --release --locked     # from the repository root: target/release/coil
#   packer init deploy/hetzner/image
#   packer build -var coil_version=$(git rev-parse --short HEAD) deploy/hetzner/image
#
# The snapshot ID printed at the end goes into terraform.tfvars (coil_snapshot_id) and
# into the autoscaler (COIL_SNAPSHOT_ID in /etc/coil/autoscaler.env) for a rolling
# upgrade (docs/operations.md).

packer {
  required_plugins {
    hcloud = {
      source  = "github.com/hetznercloud/hcloud"
      version = ">= 1.6.0"
    }
  }
}

variable "coil_version" {
  type        = string
  description = "Version label of the snapshot (git short hash or release tag)."
}

variable "coil_binary" {
  type        = string
  default     = "target/release/coil"
  description = "Path of the release binary built for x86_64 Linux (glibc of Debian 12 or static musl)."
}

variable "build_location" {
  type    = string
  default = "ash"
}

variable "build_server_type" {
  type        = string
  default     = "cpx11"
  description = "Builder size only; a snapshot boots on any type with an equal or larger disk, so build on the smallest disk you deploy."
}

variable "fleet_name" {
  type    = string
  default = "coil"
}

source "hcloud" "coil" {
  # token: read from HCLOUD_TOKEN by the plugin.
  image         = "debian-12"
  location      = var.build_location
  server_type   = var.build_server_type
  ssh_username  = "root"
  snapshot_name = "${var.fleet_name}-${var.coil_version}"
  snapshot_labels = {
    "coil-fleet"   = var.fleet_name
    "coil-image"   = "node"
    "coil-version" = var.coil_version
  }
  server_labels = {
    "coil-fleet" = var.fleet_name
    "coil-pool"  = "image-builder"
  }
}

build {
  sources = ["source.hcloud.coil"]

  # Directory uploads need their destination to exist.
  provisioner "shell" {
    inline = ["mkdir -p /tmp/coil-systemd"]
  }

  provisioner "file" {
    source      = var.coil_binary
    destination = "/tmp/coil"
  }

  provisioner "file" {
    source      = "${path.root}/../systemd/"
    destination = "/tmp/coil-systemd"
  }

  provisioner "file" {
    source      = "${path.root}/../../../docs/operations.md"
    destination = "/tmp/operations.md"
  }

  provisioner "shell" {
    script           = "${path.root}/provision.sh"
    environment_vars = ["COIL_VERSION=${var.coil_version}"]
  }
}
