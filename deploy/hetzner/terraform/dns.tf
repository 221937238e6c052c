# DNS in Hetzner DNS (Cloud API zones) through the hcloud provider; see versions.tf for
# why. Only stable names live here. Per-node records <server-name>.<nodes_domain> are
# created and deleted by the autoscaler together with the server (one extra API request
# each), and acme.sh on the autoscaler writes the _acme-challenge TXT records for the
# *.<nodes_domain> wildcard certificate.

resource "hcloud_zone" "fleet" {
  count  = var.create_dns_zone ? 1 : 0
  name   = var.domain
  mode   = "primary"
  ttl    = 3600
  labels = local.labels
}

locals {
  zone_name = var.create_dns_zone ? hcloud_zone.fleet[0].name : var.domain
}

resource "hcloud_zone_rrset" "api_a" {
  zone    = local.zone_name
  name    = var.api_hostname
  type    = "A"
  ttl     = 300
  records = [{ value = hcloud_load_balancer.matchmaker.ipv4 }]
}

resource "hcloud_zone_rrset" "api_aaaa" {
  zone    = local.zone_name
  name    = var.api_hostname
  type    = "AAAA"
  ttl     = 300
  records = [{ value = hcloud_load_balancer.matchmaker.ipv6 }]
}

resource "hcloud_zone_rrset" "grafana_a" {
  zone    = local.zone_name
  name    = var.grafana_hostname
  type    = "A"
  ttl     = 300
  records = [{ value = hcloud_server.monitoring.ipv4_address }]
}

# CAA: only Let's Encrypt may issue for this zone (Hetzner's managed certificates use
# Let's Encrypt too).
resource "hcloud_zone_rrset" "caa" {
  zone    = local.zone_name
  name    = "@"
  type    = "CAA"
  ttl     = 3600
  records = [{ value = "0 issue \"letsencrypt.org\"" }, { value = "0 issuewild \"letsencrypt.org\"" }]
}
