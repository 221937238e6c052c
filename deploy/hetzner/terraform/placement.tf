# Spread placement groups: no two members share a physical host, so one host failure
# takes out at most one matchmaker, one Redis and one PostgreSQL server.
# A placement group holds at most 10 servers (Hetzner limit).

resource "hcloud_placement_group" "control_plane" {
  name   = "${var.fleet_name}-control-plane"
  type   = "spread"
  labels = local.labels

  lifecycle {
    precondition {
      condition     = local.control_plane_size <= 10
      error_message = "The control plane has more than 10 servers; a spread placement group holds at most 10. Lower matchmaker_count or split the group."
    }
  }
}

# Offered to the autoscaler (output game_placement_group_ids); empty by default.
resource "hcloud_placement_group" "game" {
  count  = var.game_placement_group_count
  name   = "${var.fleet_name}-game-${count.index + 1}"
  type   = "spread"
  labels = merge(local.labels, { "coil-pool" = "game" })
}
