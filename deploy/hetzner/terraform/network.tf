# Private network, subnets and the fixed address plan of the control plane.
#
# Fixed addresses (instead of DHCP) let every cloud-init file name its peers without a
# dependency cycle: the Redis replica knows the primary, HAProxy knows all Redis
# servers, Prometheus' /etc/hosts knows every scrape target, before any server exists.

locals {
  labels = {
    "coil-fleet" = var.fleet_name
  }

  # Host numbers inside var.control_subnet_ip_range.
  load_balancer_ip   = cidrhost(var.control_subnet_ip_range, 2)
  monitoring_ip      = cidrhost(var.control_subnet_ip_range, 5)
  autoscaler_ip      = cidrhost(var.control_subnet_ip_range, 6)
  matchmaker_ips     = [for i in range(var.matchmaker_count) : cidrhost(var.control_subnet_ip_range, 11 + i)]
  redis_ips          = [for i in range(var.redis_count) : cidrhost(var.control_subnet_ip_range, 21 + i)]
  postgres_vip       = cidrhost(var.control_subnet_ip_range, 30)
  postgres_ips       = [for i in range(var.postgres_count) : cidrhost(var.control_subnet_ip_range, 31 + i)]
  ssh_key_ids        = [for key in hcloud_ssh_key.operator : key.id]
  nodes_domain       = "${var.nodes_subdomain}.${var.domain}"
  api_domain         = "${var.api_hostname}.${var.domain}"
  grafana_domain     = "${var.grafana_hostname}.${var.domain}"
  network_name       = "${var.fleet_name}-net"
  control_plane_size = 2 + var.matchmaker_count + var.redis_count + var.postgres_count
}

resource "hcloud_network" "fleet" {
  name     = local.network_name
  ip_range = var.network_ip_range
  labels   = local.labels
}

resource "hcloud_network_subnet" "control" {
  network_id   = hcloud_network.fleet.id
  type         = "cloud"
  network_zone = var.network_zone
  ip_range     = var.control_subnet_ip_range
}

resource "hcloud_network_subnet" "game" {
  network_id   = hcloud_network.fleet.id
  type         = "cloud"
  network_zone = var.network_zone
  ip_range     = var.game_subnet_ip_range
}

resource "hcloud_ssh_key" "operator" {
  for_each   = var.ssh_public_keys
  name       = "${var.fleet_name}-${each.key}"
  public_key = each.value
  labels     = local.labels
}
