#!/usr/bin/env python3
"""Structural checks of Coil's Grafana dashboards and Prometheus rules.

Owns: (1) every dashboard JSON parses, matches DASHBOARD_SCHEMA (each panel has a
datasource, a gridPos and targets with a non-empty expr), uses the provisioned
datasource uid, has unique panel ids and non-overlapping panels; (2) every metric name
in a dashboard expression or an alert/recording rule is one Coil or the standard
exporters export (KNOWN_METRICS, copied from the metrics contract); (3) writes a
Prometheus rule file holding every panel expression as a recording rule, with Grafana's
$__ macros replaced, so `promtool check rules` parses each one.
Must not: talk to Prometheus or Grafana.

(4) every alert has a runbook section "### <AlertName>" in docs/operations.md, and its
runbook annotation points at that section.

Usage: check_monitoring.py <monitoring_dir> <out_rule_file> [operations_md]   (exit 1 on any failure)
"""

import json
import pathlib
import re
import sys

import jsonschema
import yaml

# The metrics contract (docs/operations.md, "Metrics"). Histograms also expose
# _bucket, _count and _sum series.
HISTOGRAMS = {
    "coil_tick_duration_seconds", "coil_encode_duration_seconds", "coil_join_latency_seconds",
    "coil_matchmake_duration_seconds",
}
KNOWN_METRICS = HISTOGRAMS | {
    "coil_tick_overruns_total", "coil_rooms", "coil_players", "coil_connections_open",
    "coil_ws_bytes_sent_total", "coil_ws_bytes_received_total", "coil_joins_total",
    "coil_dropped_frames_total", "coil_disconnects_total", "coil_node_draining", "coil_node_ready",
    "coil_leaderboard_writes_total", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_open_fds", "coil_matchmake_requests_total", "coil_directory_rooms",
    "coil_directory_seats_free", "coil_directory_warm_rooms", "coil_directory_humans",
    "coil_directory_nodes", "coil_autoscaler_decisions_total", "coil_autoscaler_create_failures_total",
    "coil_autoscaler_nodes", "coil_autoscaler_api_requests_remaining",
    # standard exporters and Prometheus itself
    "redis_up", "redis_connected_slaves", "pg_up", "up",
}
# Label values the contract allows (bounded labels).
KNOWN_LABEL_VALUES = {
    ("coil_rooms", "state"): {"warm", "active", "draining"},
    ("coil_players", "kind"): {"human", "bot"},
    ("coil_joins_total", "result"): {"ok", "room_full", "draining", "bad_frame", "bad_name", "token_required",
                                     "token_expired", "token_invalid", "token_replayed", "token_wrong_room",
                                     "unsupported_version"},
    ("coil_disconnects_total", "reason"): {"client_closed", "slow_client", "protocol_error", "drain", "server_shutdown"},
    ("coil_leaderboard_writes_total", "result"): {"ok", "error", "dropped"},
    ("coil_matchmake_requests_total", "result"): {"ok", "no_capacity", "contended", "override_conflict", "bad_request", "error"},
    ("coil_autoscaler_decisions_total", "action"): {"scale_out", "scale_in", "drain", "delete", "hold"},
    ("coil_autoscaler_create_failures_total", "reason"): {"resource_unavailable", "rate_limited", "limit_exceeded", "other"},
    ("coil_autoscaler_nodes", "state"): {"booting", "active", "draining"},
    ("coil_directory_nodes", "state"): {"active", "draining"},
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "clamp_min", "clamp_max",
    "absent", "absent_over_time", "label_replace", "label_join", "time", "vector", "scalar", "abs", "round",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "count_over_time", "predict_linear",
    "le", "inf", "nan", "humanize", "e",
}

DATASOURCE = {"type": "object", "required": ["type", "uid"],
              "properties": {"type": {"const": "prometheus"}, "uid": {"type": "string", "minLength": 1}}}
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion", "templating"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "panels": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "title", "type", "datasource", "gridPos", "targets"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string", "minLength": 1},
                    "type": {"enum": ["timeseries", "stat", "bargauge", "gauge", "table", "heatmap"]},
                    "datasource": DATASOURCE,
                    "gridPos": {"type": "object", "required": ["x", "y", "w", "h"],
                                "properties": {"x": {"type": "integer", "minimum": 0, "maximum": 23},
                                               "w": {"type": "integer", "minimum": 1, "maximum": 24},
                                               "y": {"type": "integer", "minimum": 0},
                                               "h": {"type": "integer", "minimum": 1}}},
                    "targets": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["expr", "refId", "datasource"],
                        "properties": {"expr": {"type": "string", "minLength": 1},
                                       "refId": {"type": "string", "minLength": 1},
                                       "datasource": DATASOURCE}}},
                },
            },
        },
    },
}
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

failures = []


def fail(message):
    failures.append(message)
    print(f"  FAIL: {message}")


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions,
    keywords, label names inside {...} or by(...) lists, durations or strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # drop string literals
    text = re.sub(r"\{[^}]*\}", "{}", text)                    # drop label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)                     # drop range selectors
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        before = text[:match.start()].rstrip()
        after = text[match.end():].lstrip()
        if word.lower() in PROMQL_WORDS or after.startswith("("):
            continue
        if before.endswith("$"):
            continue
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def check_metric(name, where):
    base = name
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            base = name[: -len(suffix)]
    if ":" in name:
        return  # recording rule output, checked where it is defined
    if base not in KNOWN_METRICS:
        fail(f"{where}: unknown metric '{name}' (not in the metrics contract)")


def check_label_values(expr, where):
    for metric, matchers in re.findall(r"([a-z_]+)\{([^}]*)\}", expr):
        for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', matchers):
            allowed = KNOWN_LABEL_VALUES.get((metric, label))
            if allowed is None or "$" in value:
                continue
            for alternative in value.split("|"):
                if alternative and alternative not in allowed:
                    fail(f"{where}: {metric}{{{label}{op}\"{value}\"}}: '{alternative}' is not a value Coil exports")


def check_expr(expr, where):
    for name in metric_names(expr):
        check_metric(name, where)
    check_label_values(expr, where)


def check_runbooks(monitoring_dir, operations_md):
    headings = set(re.findall(r"^### (\S+)\s*$", operations_md.read_text(), re.M))
    alerts = 0
    for path in sorted((monitoring_dir / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" not in rule:
                    continue
                alerts += 1
                name = rule["alert"]
                if name not in headings:
                    fail(f"{path.name}: alert {name} has no '### {name}' section in {operations_md.name}")
                expected = f"docs/operations.md#{name.lower()}"
                if rule.get("annotations", {}).get("runbook") != expected:
                    fail(f"{path.name}: alert {name}: runbook annotation must be {expected}")
    print(f"  runbook sections found for {alerts} alerts")


def check_rules(monitoring_dir):
    paths = sorted((monitoring_dir / "rules").glob("*.yml"))
    docs = {path: yaml.safe_load(path.read_text()) for path in paths}
    # Rule groups evaluate independently, so a recording rule may be defined in any file.
    recorded = {rule["record"] for doc in docs.values() for group in doc.get("groups", [])
                for rule in group.get("rules", []) if "record" in rule}
    count = 0
    for path, doc in docs.items():
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                count += 1
                name = rule.get("record") or rule.get("alert")
                where = f"{path.name}: {name}"
                if "alert" in rule:
                    for key in ("summary", "runbook"):
                        if key not in rule.get("annotations", {}):
                            fail(f"{where}: alert needs a '{key}' annotation")
                    if rule.get("labels", {}).get("severity") not in ("page", "ticket"):
                        fail(f"{where}: severity must be page or ticket")
                check_expr(rule["expr"], where)
                for used in re.findall(r"\b[a-z_]+:[a-z_0-9:]+\b", re.sub(r'"[^"]*"', "", rule["expr"])):
                    if used not in recorded:
                        fail(f"{where}: uses recording rule {used} which no rule file defines")
    print(f"  metric names checked in {count} rules")
    return recorded


def check_dashboards(monitoring_dir, out_rule_file):
    provisioning = yaml.safe_load((monitoring_dir / "grafana/provisioning/datasources/coil-prometheus.yml").read_text())
    uids = {d["uid"] for d in provisioning["datasources"]}
    rules, total = [], 0
    for path in sorted((monitoring_dir / "grafana/dashboards").glob("*.json")):
        try:
            board = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            fail(f"{path.name}: invalid JSON: {error}")
            continue
        try:
            jsonschema.validate(board, DASHBOARD_SCHEMA)
        except jsonschema.ValidationError as error:
            fail(f"{path.name}: {error.message} at {list(error.absolute_path)}")
            continue
        ids, cells = set(), {}
        for panel in board["panels"]:
            where = f"{path.name}: panel {panel['id']} '{panel['title']}'"
            if panel["id"] in ids:
                fail(f"{where}: duplicate panel id")
            ids.add(panel["id"])
            g = panel["gridPos"]
            if g["x"] + g["w"] > 24:
                fail(f"{where}: wider than the 24-column grid")
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    if (x, y) in cells:
                        fail(f"{where}: overlaps panel {cells[(x, y)]}")
                        break
                    cells[(x, y)] = panel["id"]
                else:
                    continue
                break
            for ds in [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]:
                if ds["uid"] not in uids:
                    fail(f"{where}: datasource uid '{ds['uid']}' is not provisioned")
            for target in panel["targets"]:
                total += 1
                expr = target["expr"]
                for macro, value in GRAFANA_MACROS.items():
                    expr = expr.replace(macro, value)
                # Template variables become a match-all regex, as Grafana's "All" does.
                expr = expr.replace("$region", ".*")
                if "$" in expr:
                    fail(f"{where}: unresolved Grafana variable in {expr!r}")
                check_expr(expr, where)
                rules.append({"record": f"dashboard:{board['uid'].replace('-', '_')}:p{panel['id']}_{target['refId'].lower()}",
                              "expr": expr})
    out_rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-expressions", "rules": rules}]}))
    print(f"  {total} panel expressions written to {out_rule_file} for promtool")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 64
    monitoring_dir, out_rule_file = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    check_rules(monitoring_dir)
    if len(sys.argv) == 4:
        check_runbooks(monitoring_dir, pathlib.Path(sys.argv[3]))
    check_dashboards(monitoring_dir, out_rule_file)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
