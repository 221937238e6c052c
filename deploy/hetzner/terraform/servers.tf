# Control-plane servers. Game nodes are NOT here: the autoscaler creates them from
# var.coil_snapshot_id with the labels coil-fleet=<fleet_name>, coil-pool=game.
#
# cloud-init runs once, at creation. Later configuration changes go over SSH
# (docs/operations.md), so user_data, image and ssh_keys changes are ignored instead of
# replacing a running database.

locals {
  # Rendered into /etc/hosts on every control-plane server so configuration files and
  # Prometheus' static targets can use stable names instead of addresses.
  # indent(6, ...) because the text lands inside a YAML block scalar six spaces deep.
  hosts_entries = indent(6, join("\n", concat(
    ["${local.monitoring_ip} monitoring-1", "${local.autoscaler_ip} autoscaler-1", "${local.postgres_vip} postgres-primary"],
    [for i, ip in local.matchmaker_ips : "${ip} matchmaker-${i + 1}"],
    [for i, ip in local.redis_ips : "${ip} redis-${i + 1}"],
    [for i, ip in local.postgres_ips : "${ip} postgres-${i + 1}"],
  )))

  # HAProxy backend lines for the Redis-primary listener (templates/matchmaker, autoscaler).
  haproxy_redis_servers = indent(8, join("\n", [
    for i, ip in local.redis_ips : "server redis-${i + 1} ${ip}:6379 check inter 1s fall 2 rise 2"
  ]))

  matchmaker_internal_urls = join(",", [for ip in local.matchmaker_ips : "http://${ip}:8788"])
}

resource "hcloud_server" "matchmaker" {
  count              = var.matchmaker_count
  name               = "${var.fleet_name}-matchmaker-${count.index + 1}"
  server_type        = var.matchmaker_server_type
  image              = var.coil_snapshot_id
  location           = var.location
  ssh_keys           = local.ssh_key_ids
  placement_group_id = hcloud_placement_group.control_plane.id
  firewall_ids       = [hcloud_firewall.matchmaker.id]
  labels             = merge(local.labels, { "coil-role" = "matchmaker" })

  user_data = templatefile("${path.module}/templates/matchmaker.yaml.tftpl", {
    hostname      = "${var.fleet_name}-matchmaker-${count.index + 1}"
    hosts_entries = local.hosts_entries
    region        = var.region
    private_ip    = local.matchmaker_ips[count.index]
    nodes_domain  = local.nodes_domain

    haproxy_redis_servers = local.haproxy_redis_servers
  })

  network {
    network_id = hcloud_network.fleet.id
    ip         = local.matchmaker_ips[count.index]
    alias_ips  = []
  }

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    ignore_changes = [image, user_data, ssh_keys]
  }

  depends_on = [hcloud_network_subnet.control]
}

resource "hcloud_server" "redis" {
  count              = var.redis_count
  name               = "${var.fleet_name}-redis-${count.index + 1}"
  server_type        = var.redis_server_type
  image              = var.base_image
  location           = var.location
  ssh_keys           = local.ssh_key_ids
  placement_group_id = hcloud_placement_group.control_plane.id
  firewall_ids       = [hcloud_firewall.internal.id]
  labels             = merge(local.labels, { "coil-role" = "redis" })
  delete_protection  = var.enable_delete_protection
  rebuild_protection = var.enable_delete_protection

  user_data = templatefile("${path.module}/templates/redis.yaml.tftpl", {
    hostname        = "${var.fleet_name}-redis-${count.index + 1}"
    hosts_entries   = local.hosts_entries
    private_ip      = local.redis_ips[count.index]
    primary_ip      = local.redis_ips[0]
    replicaof_line  = count.index == 0 ? "" : "replicaof ${local.redis_ips[0]} 6379"
    sentinel_quorum = 2
  })

  network {
    network_id = hcloud_network.fleet.id
    ip         = local.redis_ips[count.index]
    alias_ips  = []
  }

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    ignore_changes = [image, user_data, ssh_keys]
  }

  depends_on = [hcloud_network_subnet.control]
}

resource "hcloud_server" "postgres" {
  count              = var.postgres_count
  name               = "${var.fleet_name}-postgres-${count.index + 1}"
  server_type        = var.postgres_server_type
  image              = var.base_image
  location           = var.location
  ssh_keys           = local.ssh_key_ids
  placement_group_id = hcloud_placement_group.control_plane.id
  firewall_ids       = [hcloud_firewall.internal.id]
  labels             = merge(local.labels, { "coil-role" = "postgres" })
  delete_protection  = var.enable_delete_protection
  rebuild_protection = var.enable_delete_protection

  user_data = templatefile("${path.module}/templates/postgres.yaml.tftpl", {
    hostname           = "${var.fleet_name}-postgres-${count.index + 1}"
    hosts_entries      = local.hosts_entries
    private_ip         = local.postgres_ips[count.index]
    postgres_vip       = local.postgres_vip
    postgres_role      = count.index == 0 ? "primary" : "standby"
    network_ip_range   = var.network_ip_range
    backup_s3_endpoint = var.backup_s3_endpoint
    backup_s3_region   = var.backup_s3_region
    backup_s3_bucket   = var.backup_s3_bucket
    stanza             = var.fleet_name
  })

  # The primary starts with the database address (postgres_vip) as an alias IP. A
  # failover moves it to the standby by hand (docs/operations.md), so Terraform must not
  # move it back: network changes are ignored after creation.
  network {
    network_id = hcloud_network.fleet.id
    ip         = local.postgres_ips[count.index]
    alias_ips  = count.index == 0 ? [local.postgres_vip] : []
  }

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    ignore_changes = [image, user_data, ssh_keys, network]
  }

  depends_on = [hcloud_network_subnet.control]
}

resource "hcloud_server" "monitoring" {
  name               = "${var.fleet_name}-monitoring-1"
  server_type        = var.monitoring_server_type
  image              = var.base_image
  location           = var.location
  ssh_keys           = local.ssh_key_ids
  placement_group_id = hcloud_placement_group.control_plane.id
  firewall_ids       = [hcloud_firewall.monitoring.id]
  labels             = merge(local.labels, { "coil-role" = "monitoring" })

  user_data = templatefile("${path.module}/templates/monitoring.yaml.tftpl", {
    hostname        = "${var.fleet_name}-monitoring-1"
    hosts_entries   = local.hosts_entries
    private_ip      = local.monitoring_ip
    redis_primary   = local.redis_ips[0]
    sentinel_quorum = 2
  })

  network {
    network_id = hcloud_network.fleet.id
    ip         = local.monitoring_ip
    alias_ips  = []
  }

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    ignore_changes = [image, user_data, ssh_keys]
  }

  depends_on = [hcloud_network_subnet.control]
}

resource "hcloud_server" "autoscaler" {
  name               = "${var.fleet_name}-autoscaler-1"
  server_type        = var.autoscaler_server_type
  image              = var.coil_snapshot_id
  location           = var.location
  ssh_keys           = local.ssh_key_ids
  placement_group_id = hcloud_placement_group.control_plane.id
  firewall_ids       = [hcloud_firewall.internal.id]
  labels             = merge(local.labels, { "coil-role" = "autoscaler" })

  user_data = templatefile("${path.module}/templates/autoscaler.yaml.tftpl", {
    hostname                 = "${var.fleet_name}-autoscaler-1"
    hosts_entries            = local.hosts_entries
    fleet_name               = var.fleet_name
    region                   = var.region
    private_ip               = local.autoscaler_ip
    snapshot_id              = var.coil_snapshot_id
    network_id               = hcloud_network.fleet.id
    game_firewall_id         = hcloud_firewall.game.id
    game_server_types        = join(",", var.game_server_types)
    game_locations           = join(",", var.game_locations)
    game_placement_group_ids = join(",", hcloud_placement_group.game[*].id)
    ssh_key_ids              = join(",", local.ssh_key_ids)
    nodes_min                = var.game_nodes_min
    nodes_max                = var.game_nodes_max
    dns_zone                 = var.domain
    nodes_subdomain          = var.nodes_subdomain
    nodes_domain             = local.nodes_domain
    matchmaker_internal_urls = local.matchmaker_internal_urls
    postgres_vip             = local.postgres_vip
    haproxy_redis_servers    = local.haproxy_redis_servers
  })

  network {
    network_id = hcloud_network.fleet.id
    ip         = local.autoscaler_ip
    alias_ips  = []
  }

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  lifecycle {
    ignore_changes = [image, user_data, ssh_keys]
  }

  depends_on = [hcloud_network_subnet.control]
}
