# Hetzner Cloud Firewalls filter the PUBLIC interface only; traffic inside the private
# network is not filtered by them. So "internal services only from the network" means:
# no public inbound rule for Redis, PostgreSQL, exporters or the matchmaker port, and
# every internal service binds to its private address (see templates/).
#
# A firewall also caps each server at 80,000 concurrent connections and 10,000 new
# connections per second (Hetzner limit); size game nodes below that (docs/operations.md).

locals {
  any_ip = ["0.0.0.0/0", "::/0"]
}

# Game nodes are created by the autoscaler, not Terraform. The firewall attaches itself
# to every server carrying the fleet's game-pool labels, including future ones.
resource "hcloud_firewall" "game" {
  name   = "${var.fleet_name}-game"
  labels = local.labels

  rule {
    description = "players: WebSocket over TLS"
    direction   = "in"
    protocol    = "tcp"
    port        = "443"
    source_ips  = local.any_ip
  }

  rule {
    description = "players: WebSocket on the node's own port"
    direction   = "in"
    protocol    = "tcp"
    port        = "8787"
    source_ips  = local.any_ip
  }

  rule {
    description = "path MTU discovery and ping"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = local.any_ip
  }

  rule {
    description = "operators"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }

  rule {
    description = "host metrics (node_exporter) only from the monitoring server"
    direction   = "in"
    protocol    = "tcp"
    port        = "9100"
    source_ips  = ["${hcloud_server.monitoring.ipv4_address}/32"]
  }

  apply_to {
    label_selector = "coil-fleet=${var.fleet_name},coil-pool=game"
  }
}

# Matchmakers: the load balancer reaches them over the private network, so nothing but
# SSH is open publicly.
resource "hcloud_firewall" "matchmaker" {
  name   = "${var.fleet_name}-matchmaker"
  labels = local.labels

  rule {
    description = "operators"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }

  rule {
    description = "path MTU discovery and ping"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = local.any_ip
  }
}

# Redis, PostgreSQL and the autoscaler: reachable from the private network only.
resource "hcloud_firewall" "internal" {
  name   = "${var.fleet_name}-internal"
  labels = local.labels

  rule {
    description = "operators"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }

  rule {
    description = "path MTU discovery and ping"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = local.any_ip
  }
}

resource "hcloud_firewall" "monitoring" {
  name   = "${var.fleet_name}-monitoring"
  labels = local.labels

  rule {
    description = "operators"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_cidrs
  }

  rule {
    description = "Grafana for operators only"
    direction   = "in"
    protocol    = "tcp"
    port        = "3000"
    source_ips  = var.admin_cidrs
  }

  rule {
    description = "path MTU discovery and ping"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = local.any_ip
  }
}
