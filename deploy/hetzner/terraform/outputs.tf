# Values the operator and the autoscaler configuration need after `terraform apply`.

output "api_url" {
  description = "Public matchmaker URL (POST /api/matchmake)."
  value       = "https://${local.api_domain}"
}

output "load_balancer_ipv4" {
  value = hcloud_load_balancer.matchmaker.ipv4
}

output "load_balancer_ipv6" {
  value = hcloud_load_balancer.matchmaker.ipv6
}

output "network_id" {
  description = "Private network the autoscaler attaches game nodes to."
  value       = hcloud_network.fleet.id
}

output "game_subnet_id" {
  value = hcloud_network_subnet.game.id
}

output "game_firewall_id" {
  description = "Applied to game nodes by label selector; the autoscaler may also pass it explicitly at create."
  value       = hcloud_firewall.game.id
}

output "game_placement_group_ids" {
  value = hcloud_placement_group.game[*].id
}

output "game_node_labels" {
  description = "Labels every game node must carry (the firewall, Prometheus and the autoscaler select on them)."
  value       = { "coil-fleet" = var.fleet_name, "coil-pool" = "game" }
}

output "nodes_domain" {
  description = "Game nodes are <server-name>.<nodes_domain>; the wildcard certificate covers *.<nodes_domain>."
  value       = local.nodes_domain
}

output "dns_nameservers" {
  description = "Delegate the zone to these at the registrar (only when create_dns_zone = true)."
  value       = var.create_dns_zone ? hcloud_zone.fleet[0].authoritative_nameservers.assigned : []
}

output "private_ips" {
  value = {
    load_balancer = local.load_balancer_ip
    monitoring    = local.monitoring_ip
    autoscaler    = local.autoscaler_ip
    matchmakers   = local.matchmaker_ips
    redis         = local.redis_ips
    postgres      = local.postgres_ips
    postgres_vip  = local.postgres_vip
  }
}

output "public_ipv4" {
  value = {
    monitoring  = hcloud_server.monitoring.ipv4_address
    autoscaler  = hcloud_server.autoscaler.ipv4_address
    matchmakers = hcloud_server.matchmaker[*].ipv4_address
    redis       = hcloud_server.redis[*].ipv4_address
    postgres    = hcloud_server.postgres[*].ipv4_address
  }
}

output "grafana_url" {
  value = "http://${local.grafana_domain}:3000"
}
