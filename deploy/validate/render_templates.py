#!/usr/bin/env python3
"""Renders Coil's cloud-init templates with sample values so `cloud-init schema` can
check the exact YAML a server will receive.

Owns: the Terraform templates (terraform/templates/*.tftpl: plain ${name} only, which
check_terraform.py enforces, so this substitution is what templatefile() does) and the
game node's user data (image/node-cloud-init.yaml: {{name}} placeholders the autoscaler
fills). Must not: accept a template with syntax it cannot render faithfully.

Usage: render_templates.py <terraform_templates_dir> <node_cloud_init> <out_dir>
Prints one rendered path per line; exit 1 on a problem.
"""

import base64
import pathlib
import re
import sys

USER_DATA_LIMIT = 32 * 1024  # Hetzner: user_data <= 32 KiB

SAMPLES = {
    "hosts_entries": "10.40.1.5 monitoring-1\n      10.40.1.6 autoscaler-1\n      10.40.1.11 matchmaker-1",
    "haproxy_redis_servers": "server redis-1 10.40.1.21:6379 check inter 1s fall 2 rise 2\n"
                             "        server redis-2 10.40.1.22:6379 check inter 1s fall 2 rise 2",
    "replicaof_line": "replicaof 10.40.1.21 6379",
    "postgres_role": "standby",
    "private_ip": "10.40.1.22",
    "primary_ip": "10.40.1.21",
    "redis_primary": "10.40.1.21",
    "postgres_vip": "10.40.1.30",
    "network_ip_range": "10.40.0.0/16",
    "sentinel_quorum": "2",
    "nodes_min": "1",
    "nodes_max": "12",
    "network_id": "1234567",
    "game_firewall_id": "7654321",
    "snapshot_id": "123456789",
    "game_placement_group_ids": "",
    "ssh_key_ids": "111,222",
    "game_server_types": "ccx33,ccx23,cpx41",
    "game_locations": "ash",
    "matchmaker_internal_urls": "http://10.40.1.11:8788,http://10.40.1.12:8788",
}

PEM_CHAIN = ("-----BEGIN CERTIFICATE-----\n" + ("A" * 64 + "\n") * 28 + "-----END CERTIFICATE-----\n") * 2
PEM_KEY = "-----BEGIN EC PRIVATE KEY-----\n" + ("B" * 64 + "\n") * 3 + "-----END EC PRIVATE KEY-----\n"
FLEET_ENV = ("REDIS_URL=redis://10.40.1.21:6379\nREDIS_KEY_PREFIX=coil\nINTERNAL_SECRET=" + "x" * 64 + "\n"
             "DATABASE_URL=postgres://coil:" + "p" * 40 + "@10.40.1.30:5432/coil\n"
             "JOIN_TOKEN_PUBLIC_KEY=" + "k" * 44 + "\n")
NODE_SAMPLES = {
    "node_name": "coil-game-ash-7f3a",
    "region": "us-east",
    "public_host": "coil-game-ash-7f3a.nodes.play.example.com",
    "fleet_env_b64": base64.b64encode(FLEET_ENV.encode()).decode(),
    "tls_fullchain_b64": base64.b64encode(PEM_CHAIN.encode()).decode(),
    "tls_privkey_b64": base64.b64encode(PEM_KEY.encode()).decode(),
}


def render_terraform_template(text):
    def sample(match):
        name = match.group(1)
        return SAMPLES.get(name, f"sample-{name.replace('_', '-')}")
    rendered = re.sub(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sample, text)
    return rendered.replace("$${", "${").replace("%%{", "%{")


def render_node_template(text):
    names = set(re.findall(r"\{\{([a-z_0-9]+)\}\}", text))
    unknown = names - NODE_SAMPLES.keys()
    if unknown:
        raise ValueError(f"node user data uses unknown placeholders {sorted(unknown)}")
    missing = NODE_SAMPLES.keys() - names
    if missing:
        raise ValueError(f"node user data never uses placeholders {sorted(missing)}")
    return re.sub(r"\{\{([a-z_0-9]+)\}\}", lambda m: NODE_SAMPLES[m.group(1)], text)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 64
    templates_dir, node_file, out_dir = map(pathlib.Path, sys.argv[1:])
    out_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for template in sorted(templates_dir.glob("*.tftpl")):
        rendered = render_terraform_template(template.read_text())
        target = out_dir / template.name.removesuffix(".tftpl")
        target.write_text(rendered)
        if len(rendered.encode()) > USER_DATA_LIMIT:
            print(f"FAIL: {template.name} renders to {len(rendered.encode())} bytes > 32 KiB user data limit", file=sys.stderr)
            status = 1
        print(target)
    try:
        rendered = render_node_template(node_file.read_text())
    except ValueError as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    size = len(rendered.encode())
    if size > USER_DATA_LIMIT:
        print(f"FAIL: node user data renders to {size} bytes > 32 KiB", file=sys.stderr)
        status = 1
    target = out_dir / "node-cloud-init.rendered.yaml"
    target.write_text(rendered)
    print(target)
    print(f"node user data with a 2-certificate chain: {size} bytes of {USER_DATA_LIMIT}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
