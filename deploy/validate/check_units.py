#!/usr/bin/env python3
"""Policy checks on Coil's systemd units that `systemd-analyze verify` cannot make.

Owns: every coil-*.service runs unprivileged and hardened (DynamicUser, NoNewPrivileges,
ProtectSystem=strict), raises LimitNOFILE to 1048576, restarts on failure, reads its
settings from /etc/coil/*.env; and the game node's TimeoutStopSec leaves room for the
drain deadlines its user data sets (DRAIN_TIMEOUT_SECS, MATCH_DRAIN_DEADLINE_SECS), because SIGTERM drains and
systemd would otherwise kill the node mid-drain. Must not: duplicate verify's syntax checks.

Usage: check_units.py <systemd_dir> <node_cloud_init>   (exit 1 on any failure)
"""

import pathlib
import re
import sys

REQUIRED = {
    "LimitNOFILE": "1048576",
    "Restart": "on-failure",
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "KillSignal": "SIGTERM",
}


def service_settings(path):
    """[Service] assignments as key -> list of values (systemd allows repeated keys)."""
    settings, section = {}, None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def seconds(value):
    match = re.fullmatch(r"(\d+)\s*(s|sec|min|m)?", value)
    if not match:
        raise ValueError(f"unsupported duration {value!r}")
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * 60 if unit in ("min", "m") else number


def main():
    systemd_dir, node_user_data = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    problems = []
    units = sorted(systemd_dir.glob("coil-*.service"))
    if {u.name for u in units} != {"coil-node.service", "coil-matchmaker.service", "coil-autoscaler.service"}:
        problems.append(f"expected coil-node, coil-matchmaker and coil-autoscaler units, found {[u.name for u in units]}")
    for unit in units:
        settings = service_settings(unit)
        for key, expected in REQUIRED.items():
            if settings.get(key, [None])[-1] != expected:
                problems.append(f"{unit.name}: {key} must be {expected}, is {settings.get(key)}")
        env_files = settings.get("EnvironmentFile", [])
        if not env_files or not all(f.lstrip("-").startswith("/etc/coil/") and f.endswith(".env") for f in env_files):
            problems.append(f"{unit.name}: EnvironmentFile must be /etc/coil/*.env, is {env_files}")
        if not settings.get("ExecStart", [""])[-1].startswith("/usr/local/bin/coil "):
            problems.append(f"{unit.name}: ExecStart must run /usr/local/bin/coil <subcommand>")
    node = systemd_dir / "coil-node.service"
    deadlines = {}
    for variable in ("DRAIN_TIMEOUT_SECS", "MATCH_DRAIN_DEADLINE_SECS"):
        found = re.search(rf"^\s*{variable}=(\d+)\s*$", node_user_data.read_text(), re.M)
        if found:
            deadlines[variable] = int(found.group(1))
        else:
            problems.append(f"node user data must set {variable}")
    if deadlines and node.exists():
        stop = seconds(service_settings(node).get("TimeoutStopSec", ["90s"])[-1])
        variable, longest = max(deadlines.items(), key=lambda item: item[1])
        if stop < longest + 60:
            problems.append(f"coil-node.service: TimeoutStopSec={stop}s must exceed the drain deadline "
                            f"{variable}={longest}s by at least 60s")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
