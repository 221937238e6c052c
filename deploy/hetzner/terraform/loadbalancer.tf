# One LB11 in front of the matchmakers only. Players' WebSockets go straight to game
# nodes: an LB11 holds 10,000 concurrent connections, far below one region's CCU, while
# POST /api/matchmake is short-lived HTTP that an LB11 carries easily.

resource "hcloud_load_balancer" "matchmaker" {
  name               = "${var.fleet_name}-matchmaker"
  load_balancer_type = "lb11"
  location           = var.location
  labels             = local.labels
  delete_protection  = var.enable_delete_protection

  algorithm {
    type = "least_connections"
  }
}

resource "hcloud_load_balancer_network" "matchmaker" {
  load_balancer_id = hcloud_load_balancer.matchmaker.id
  network_id       = hcloud_network.fleet.id
  ip               = local.load_balancer_ip

  depends_on = [hcloud_network_subnet.control]
}

# Hetzner obtains and renews this certificate itself (the zone is at Hetzner DNS).
resource "hcloud_managed_certificate" "api" {
  name         = "${var.fleet_name}-api"
  domain_names = [local.api_domain]
  labels       = local.labels

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [hcloud_zone_rrset.api_a, hcloud_zone_rrset.api_aaaa]
}

resource "hcloud_load_balancer_service" "matchmaker_https" {
  load_balancer_id = hcloud_load_balancer.matchmaker.id
  protocol         = "https"
  listen_port      = 443
  destination_port = 8788

  http {
    certificates  = [hcloud_managed_certificate.api.id]
    redirect_http = true
    timeout_idle  = 60
  }

  # /api/ready answers 200 only when the matchmaker can reach the room directory, so a
  # matchmaker that lost Redis stops receiving players.
  health_check {
    protocol = "http"
    port     = 8788
    interval = 5
    timeout  = 3
    retries  = 2

    http {
      path         = "/api/ready"
      status_codes = ["200"]
    }
  }
}

# Targets by label, over the private network: a replaced matchmaker joins by itself.
resource "hcloud_load_balancer_target" "matchmakers" {
  type             = "label_selector"
  load_balancer_id = hcloud_load_balancer.matchmaker.id
  label_selector   = "coil-fleet=${var.fleet_name},coil-role=matchmaker"
  use_private_ip   = true

  depends_on = [hcloud_load_balancer_network.matchmaker]
}
