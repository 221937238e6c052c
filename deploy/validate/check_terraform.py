#!/usr/bin/env python3
"""Checks Coil's Terraform and Packer files with a real HCL parser (python-hcl2).

Owns: parse every .tf / .pkr.hcl file; check that every var./local./resource reference
is declared; that every argument and block used on an hcloud_* resource is one the
provider documents (table below, from the terraform-provider-hcloud docs/resources/*.md);
that every templatefile() call passes exactly the variables its template uses; that
templates contain only plain ${name} interpolations (so render_templates.py renders them
exactly as Terraform would). Must not: contact any API or download providers.

Usage: check_terraform.py <terraform_dir> <packer_file>...   (exit 1 on any failure)
"""

import pathlib
import re
import sys

import hcl2

# Arguments and nested blocks per resource type, from the provider's docs/resources
# pages (hetznercloud/terraform-provider-hcloud, checked 2026-11). Nested blocks map to
# their own allowed keys.
PROVIDER_SCHEMA = {
    "hcloud_network": {"name", "ip_range", "labels", "delete_protection", "expose_routes_to_vswitch"},
    "hcloud_network_subnet": {"network_id", "type", "ip_range", "network_zone", "vswitch_id"},
    "hcloud_ssh_key": {"name", "public_key", "labels"},
    "hcloud_placement_group": {"name", "type", "labels"},
    "hcloud_firewall": {
        "name", "labels",
        ("rule", frozenset({"direction", "protocol", "port", "source_ips", "destination_ips", "description"})),
        ("apply_to", frozenset({"label_selector", "server"})),
    },
    "hcloud_server": {
        "name", "server_type", "image", "location", "datacenter", "user_data", "ssh_keys", "keep_disk",
        "iso", "rescue", "labels", "backups", "firewall_ids", "ignore_remote_firewall_ids",
        "placement_group_id", "delete_protection", "rebuild_protection", "allow_deprecated_images",
        "shutdown_before_deletion",
        ("public_net", frozenset({"ipv4_enabled", "ipv4", "ipv6_enabled", "ipv6"})),
        ("network", frozenset({"network_id", "subnet_id", "ip", "alias_ips"})),
    },
    "hcloud_load_balancer": {
        "name", "load_balancer_type", "location", "network_zone", "labels", "delete_protection",
        "ipv4_id", "ipv6_id",
        ("algorithm", frozenset({"type"})),
    },
    "hcloud_load_balancer_network": {"load_balancer_id", "network_id", "subnet_id", "ip", "enable_public_interface"},
    "hcloud_load_balancer_service": {
        "load_balancer_id", "protocol", "listen_port", "destination_port", "proxyprotocol",
        ("http", frozenset({"sticky_sessions", "cookie_name", "cookie_lifetime", "certificates", "redirect_http", "timeout_idle"})),
        ("health_check", frozenset({"protocol", "port", "interval", "timeout", "retries",
                                    ("http", frozenset({"domain", "path", "response", "tls", "status_codes"}))})),
    },
    "hcloud_load_balancer_target": {"type", "load_balancer_id", "server_id", "label_selector", "ip", "use_private_ip"},
    "hcloud_managed_certificate": {"name", "domain_names", "labels"},
    "hcloud_zone": {"name", "mode", "ttl", "labels", "delete_protection", "primary_nameservers"},
    "hcloud_zone_rrset": {"zone", "name", "type", "ttl", "labels", "records", "change_protection"},
}
# Packer hcloud builder options (hetznercloud/packer-plugin-hcloud docs/builders/hcloud.mdx);
# communicator options (ssh_*) are accepted by prefix.
PACKER_HCLOUD_OPTIONS = {
    "token", "image", "image_filter", "location", "server_type", "endpoint", "server_name",
    "server_labels", "skip_create_snapshot", "snapshot_name", "snapshot_labels", "poll_interval",
    "user_data", "user_data_file", "ssh_keys_labels", "ssh_keys", "rescue", "upgrade_server_type",
    "networks", "public_ipv4", "public_ipv4_disabled", "public_ipv6", "public_ipv6_disabled", "firewalls",
    "communicator", "temporary_key_pair_type", "temporary_key_pair_bits",
}
META_ARGUMENTS = {"count", "for_each", "depends_on", "lifecycle", "provider"}
MARKERS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}

IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
TEMPLATE_INTERPOLATION = re.compile(r"(?<!\$)\$\{(" + IDENT + r")\}")
ANY_TEMPLATE_SEQUENCE = re.compile(r"(?<![$%])[$%]\{")

failures = []


def fail(message):
    failures.append(message)
    print(f"  FAIL: {message}")


def unquote(key):
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key


def strings_in(value):
    """Every string inside a parsed HCL value (expressions arrive as strings)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key in MARKERS:
                continue
            yield from strings_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from strings_in(inner)


def blocks(value):
    """Nested blocks arrive as a list of dicts marked __is_block__."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and v.get("__is_block__") for v in value):
        return value
    return None


def check_arguments(where, body, allowed):
    simple = {a for a in allowed if isinstance(a, str)}
    nested = {a[0]: a[1] for a in allowed if isinstance(a, tuple)}
    for key, value in body.items():
        if key in MARKERS or key in META_ARGUMENTS:
            continue
        if key in nested:
            inner = blocks(value)
            if inner is None:
                fail(f"{where}: '{key}' must be a block")
                continue
            for block in inner:
                check_arguments(f"{where}.{key}", block, nested[key])
        elif key not in simple:
            fail(f"{where}: argument '{key}' is not documented for this resource")


def templatefile_calls(text):
    """(template path, set of map keys) for each templatefile(...) in an expression."""
    for match in re.finditer(r'templatefile\(\s*"\$\{path\.module\}/([^"]+)"\s*,\s*\{', text):
        depth, i = 1, match.end()
        in_string = False
        while i < len(text) and depth:
            c = text[i]
            if in_string:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
            i += 1
        body = text[match.end():i - 1]
        # Keys of the top-level map: identifiers at depth 0 followed by '='.
        keys, depth, in_string, token = set(), 0, False, ""
        j = 0
        while j < len(body):
            c = body[j]
            if in_string:
                if c == "\\":
                    j += 1
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "{[(":
                depth += 1
            elif c in "}])":
                depth -= 1
            elif depth == 0:
                m = re.match(r"\s*(" + IDENT + r")\s*=(?!=)", body[j:])
                if m and (j == 0 or body[j - 1] in ", \n"):
                    keys.add(m.group(1))
                    j += m.end()
                    continue
            j += 1
        yield match.group(1), keys


def check_template(module_dir, relative_path, passed_keys, where):
    path = module_dir / relative_path
    if not path.is_file():
        fail(f"{where}: template {relative_path} does not exist")
        return
    text = path.read_text()
    used = set(TEMPLATE_INTERPOLATION.findall(text))
    stripped = TEMPLATE_INTERPOLATION.sub("", text).replace("$${", "").replace("%%{", "")
    if ANY_TEMPLATE_SEQUENCE.search(stripped):
        fail(f"{relative_path}: uses template syntax other than plain ${{name}} (directives or expressions)")
    for missing in sorted(used - passed_keys):
        fail(f"{where}: template {relative_path} uses ${{{missing}}} but templatefile() does not pass it")
    for unused in sorted(passed_keys - used):
        fail(f"{where}: templatefile() passes '{unused}' which {relative_path} never uses")
    if not text.startswith("#cloud-config\n"):
        fail(f"{relative_path}: cloud-init user data must start with '#cloud-config'")


def check_terraform(module_dir):
    files = sorted(module_dir.glob("*.tf"))
    if not files:
        fail(f"no .tf files in {module_dir}")
        return
    parsed = {}
    for path in files:
        try:
            with path.open() as handle:
                parsed[path.name] = hcl2.load(handle)
        except Exception as error:  # the parser raises several exception types
            fail(f"{path.name}: HCL parse error: {error}")
    variables, locals_, resources, data_sources, outputs = set(), set(), set(), set(), set()
    for doc in parsed.values():
        for block in doc.get("variable", []):
            for name, body in block.items():
                name = unquote(name)
                variables.add(name)
                if "description" not in body or "type" not in body:
                    fail(f"variable '{name}' needs a description and a type")
        for block in doc.get("locals", []):
            locals_.update(k for k in block if k not in MARKERS)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for rname in named:
                    resources.add((unquote(rtype), unquote(rname)))
        for block in doc.get("data", []):
            for dtype, named in block.items():
                for dname in named:
                    data_sources.add((unquote(dtype), unquote(dname)))
        for block in doc.get("output", []):
            outputs.update(unquote(k) for k in block)
    providers = set()
    for doc in parsed.values():
        for block in doc.get("terraform", []):
            for required in block.get("required_providers", []):
                providers.update(k for k in required if k not in MARKERS)
    if "hcloud" not in providers:
        fail("terraform.required_providers must pin hcloud")

    referenced_vars, referenced_locals = set(), set()
    for file_name, doc in parsed.items():
        for text in strings_in(doc):
            referenced_vars.update(re.findall(r"\bvar\.(" + IDENT + ")", text))
            referenced_locals.update(re.findall(r"\blocal\.(" + IDENT + ")", text))
            for dtype, dname in re.findall(r"\bdata\.(hcloud_\w+)\.(\w+)", text):
                if (dtype, dname) not in data_sources:
                    fail(f"{file_name}: data.{dtype}.{dname} is referenced but not declared")
            for rtype, rname in re.findall(r"(?<![\w.])(hcloud_\w+)\.(\w+)", text):
                if (rtype, rname) not in resources:
                    fail(f"{file_name}: {rtype}.{rname} is referenced but not declared")
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                rtype = unquote(rtype)
                for rname, body in named.items():
                    where = f"{file_name}: {rtype}.{unquote(rname)}"
                    if rtype not in PROVIDER_SCHEMA:
                        fail(f"{where}: resource type not in the checked provider table; add it from the provider docs")
                        continue
                    check_arguments(where, body, PROVIDER_SCHEMA[rtype])
                    for text in strings_in(body):
                        for template, keys in templatefile_calls(text):
                            check_template(module_dir, template, keys, where)
    for name in sorted(referenced_vars - variables):
        fail(f"var.{name} is referenced but not declared")
    for name in sorted(variables - referenced_vars):
        fail(f"variable '{name}' is declared but never used")
    for name in sorted(referenced_locals - locals_):
        fail(f"local.{name} is referenced but not declared")
    templates = sorted((module_dir / "templates").glob("*.tftpl"))
    print(f"  parsed {len(parsed)} .tf files: {len(variables)} variables, {len(locals_)} locals, "
          f"{len(resources)} resources, {len(outputs)} outputs, {len(templates)} templates")


def check_packer(path):
    try:
        with path.open() as handle:
            doc = hcl2.load(handle)
    except Exception as error:
        fail(f"{path.name}: HCL parse error: {error}")
        return
    declared = {unquote(name) for block in doc.get("variable", []) for name in block}
    used = {name for text in strings_in(doc) for name in re.findall(r"\bvar\.(" + IDENT + ")", text)}
    for name in sorted(used - declared):
        fail(f"{path.name}: var.{name} is referenced but not declared")
    sources = {(unquote(t), unquote(n)) for block in doc.get("source", []) for t, named in block.items() for n in named}
    for block in doc.get("source", []):
        for kind, named in block.items():
            for name, body in named.items():
                for key in body:
                    if key in MARKERS or key.startswith("ssh_"):
                        continue
                    if unquote(kind) == "hcloud" and key not in PACKER_HCLOUD_OPTIONS:
                        fail(f"{path.name}: source {unquote(kind)}.{unquote(name)}: '{key}' is not a documented hcloud builder option")
    if ("hcloud", "coil") not in sources:
        fail(f"{path.name}: expected source \"hcloud\" \"coil\"")
    for block in doc.get("build", []):
        for source in block.get("sources", []):
            for text in strings_in(source):
                kind, _, name = unquote(text).removeprefix("source.").partition(".")
                if (kind, name) not in sources:
                    fail(f"{path.name}: build uses {text} which is not declared")
    print(f"  parsed {path.name}: {len(declared)} variables, {len(sources)} sources")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 64
    check_terraform(pathlib.Path(sys.argv[1]))
    for packer_file in sys.argv[2:]:
        check_packer(pathlib.Path(packer_file))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
