# Inputs for one Coil fleet (one region). Defaults are the US-first, cost-first
# baseline from docs/operations.md: the control plane below costs roughly
# €300/month at the 2026-06-15 US prices; game nodes are created by the autoscaler.

variable "fleet_name" {
  description = "Fleet name: prefix of every resource name and value of the coil-fleet label the autoscaler and Prometheus select on."
  type        = string
  default     = "coil"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.fleet_name))
    error_message = "fleet_name must be 2-21 lowercase letters, digits or dashes, starting with a letter (it becomes part of hostnames)."
  }
}

variable "region" {
  description = "Coil region name the matchmaker and the metrics use (a game-level name, not a Hetzner location)."
  type        = string
  default     = "us-east"
}

variable "location" {
  description = "Hetzner location of the control plane (ash = Ashburn, us-east network zone)."
  type        = string
  default     = "ash"
}

variable "network_zone" {
  description = "Hetzner network zone matching var.location (ash: us-east, hil: us-west, fsn1/nbg1/hel1: eu-central, sin: ap-southeast)."
  type        = string
  default     = "us-east"
}

variable "network_ip_range" {
  description = "Private network range. Control plane and game nodes share it; Hetzner allows about 100 servers per network."
  type        = string
  default     = "10.40.0.0/16"
}

variable "control_subnet_ip_range" {
  description = "Subnet for the control plane; every control-plane server gets a fixed address in it (see locals in network.tf)."
  type        = string
  default     = "10.40.1.0/24"
}

variable "game_subnet_ip_range" {
  description = "Subnet for autoscaled game nodes. It must sort after the control subnet: a server attached by network id alone lands in the last subnet ordered by ip_range."
  type        = string
  default     = "10.40.64.0/18"
}

variable "ssh_public_keys" {
  description = "Operator SSH public keys, name => key text. Injected into every server, including game nodes (the autoscaler passes the same key names)."
  type        = map(string)

  validation {
    condition     = length(var.ssh_public_keys) > 0
    error_message = "Give at least one SSH public key: servers are created without root passwords."
  }
}

variable "admin_cidrs" {
  description = "Source CIDRs allowed to reach SSH (all servers) and Grafana (monitoring). Keep this short: an office or VPN egress."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0 && !contains(var.admin_cidrs, "0.0.0.0/0") && !contains(var.admin_cidrs, "::/0")
    error_message = "admin_cidrs must list specific networks; SSH is never open to the whole internet."
  }
}

variable "domain" {
  description = "DNS zone served by Hetzner DNS, e.g. play.example.com. api.<domain> is the matchmaker, <node>.<nodes_subdomain>.<domain> are game nodes."
  type        = string
}

variable "create_dns_zone" {
  description = "Create the zone in Hetzner DNS (true) or use a zone that already exists in this project (false)."
  type        = bool
  default     = false
}

variable "api_hostname" {
  description = "Label under var.domain for the matchmaker load balancer."
  type        = string
  default     = "api"
}

variable "nodes_subdomain" {
  description = "Label under var.domain that holds one A/AAAA record per game node; the wildcard certificate covers *.<nodes_subdomain>.<domain>."
  type        = string
  default     = "nodes"
}

variable "grafana_hostname" {
  description = "Label under var.domain for Grafana on the monitoring server."
  type        = string
  default     = "grafana"
}

variable "coil_snapshot_id" {
  description = "ID of the prebaked Coil snapshot (deploy/hetzner/image). Matchmakers and the autoscaler boot from it; the autoscaler creates game nodes from it."
  type        = string
}

variable "base_image" {
  description = "Stock image for Redis, PostgreSQL and monitoring servers."
  type        = string
  default     = "debian-12"
}

variable "matchmaker_count" {
  description = "Matchmaker servers behind the load balancer (stateless; two for availability)."
  type        = number
  default     = 2

  validation {
    condition     = var.matchmaker_count >= 1 && var.matchmaker_count <= 9
    error_message = "matchmaker_count must be 1..9 (addresses .11-.19 of the control subnet)."
  }
}

variable "redis_count" {
  description = "Redis servers: the first starts as primary, the others as replicas. Sentinel runs on each plus the monitoring server (quorum 2 needs >= 2 here)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_count >= 1 && var.redis_count <= 3
    error_message = "redis_count must be 1..3."
  }
}

variable "postgres_count" {
  description = "PostgreSQL servers: the first starts as primary, the second as streaming standby."
  type        = number
  default     = 2

  validation {
    condition     = var.postgres_count >= 1 && var.postgres_count <= 2
    error_message = "postgres_count must be 1 or 2."
  }
}

variable "matchmaker_server_type" {
  description = "Server type for matchmakers."
  type        = string
  default     = "cpx21"
}

variable "redis_server_type" {
  description = "Server type for Redis (the room directory is small: thousands of keys)."
  type        = string
  default     = "cpx21"
}

variable "postgres_server_type" {
  description = "Server type for PostgreSQL (leaderboard writes are a few per second per thousand players)."
  type        = string
  default     = "cpx21"
}

variable "monitoring_server_type" {
  description = "Server type for Prometheus + Alertmanager + Grafana."
  type        = string
  default     = "cpx31"
}

variable "autoscaler_server_type" {
  description = "Server type for the autoscaler."
  type        = string
  default     = "cpx11"
}

variable "game_server_types" {
  description = "Server types the autoscaler tries for game nodes, in order. Since 2026-06-26 a type can answer resource_unavailable: the autoscaler falls through this list."
  type        = list(string)
  default     = ["ccx33", "ccx23", "cpx41"]
}

variable "game_locations" {
  description = "Locations the autoscaler may use for game nodes, in order of preference (all must share the network zone of var.location to join the private network)."
  type        = list(string)
  default     = ["ash"]
}

variable "game_nodes_min" {
  description = "Minimum game nodes the autoscaler keeps (0 allows scale to zero)."
  type        = number
  default     = 1
}

variable "game_nodes_max" {
  description = "Maximum game nodes. Check the project's server limit first: new accounts may create 5 servers in total until Hetzner raises it."
  type        = number
  default     = 12
}

variable "game_placement_group_count" {
  description = "Spread placement groups offered to the autoscaler for game nodes (at most 10 servers each). 0 by default: spread placement narrows the hosts a create may land on, which costs creates during the 2026 rationing."
  type        = number
  default     = 0
}

variable "backup_s3_endpoint" {
  description = "Hetzner Object Storage endpoint for pgBackRest (EU only, e.g. fsn1.your-objectstore.com)."
  type        = string
  default     = "fsn1.your-objectstore.com"
}

variable "backup_s3_region" {
  description = "Region string pgBackRest signs S3 requests with."
  type        = string
  default     = "fsn1"
}

variable "backup_s3_bucket" {
  description = "Bucket for PostgreSQL WAL archive and base backups."
  type        = string
  default     = "coil-pgbackrest"
}

variable "enable_delete_protection" {
  description = "Protect stateful servers (PostgreSQL, Redis) and the load balancer from accidental deletion."
  type        = bool
  default     = true
}
