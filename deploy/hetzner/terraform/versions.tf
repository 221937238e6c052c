# Provider pins for Coil's Hetzner Cloud control plane.
#
# Why one provider: since the Hetzner DNS migration (Cloud API "zones", beta from
# 2025-10-07) the official `hetznercloud/hcloud` provider manages servers, networks,
# firewalls, load balancers, managed certificates AND DNS zones/records with one
# project-scoped token. One token, one provider, one audit trail; the same token lets
# acme.sh (dns_hetznercloud) answer DNS-01 challenges for the game nodes' wildcard
# certificate. `hcloud_zone` / `hcloud_zone_rrset` need provider >= 1.54.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = ">= 1.54.0, < 2.0.0"
    }
  }
}

# The token is never a Terraform variable: the provider reads HCLOUD_TOKEN from the
# environment (`export HCLOUD_TOKEN=...` before `terraform plan`), so it never lands in
# a .tfvars file or in shell history through -var.
provider "hcloud" {}
