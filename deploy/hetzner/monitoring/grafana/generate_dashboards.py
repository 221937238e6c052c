#!/usr/bin/env python3
"""Generates Coil's Grafana dashboards (dashboards/*.json) from one table of panels.

Owns: the panel list, their PromQL and layout. Must not: invent metric names; every
expression uses only the metrics Coil and the standard exporters export (listed in
docs/operations.md). deploy/validate.sh regenerates into a temporary directory and
fails if the committed JSON differs, then checks every expression with promtool.

Run from anywhere: python3 deploy/hetzner/monitoring/grafana/generate_dashboards.py [out_dir]
"""

import json
import pathlib
import sys

DATASOURCE = {"type": "prometheus", "uid": "coil-prometheus"}
REGION = 'region=~"$region"'


def target(expr, legend, ref):
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def panel(panel_id, title, kind, targets, grid, unit="short", description="", stack=False):
    refs = "ABCDEFGH"
    body = {
        "id": panel_id,
        "title": title,
        "description": description,
        "type": kind,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": [target(expr, legend, refs[i]) for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "timeseries":
        body["fieldConfig"]["defaults"]["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if stack else 0,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        }
        body["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}}
    return body


def dashboard(uid, title, panels):
    return {
        "uid": uid,
        "title": title,
        "tags": ["coil"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "region",
                    "label": "Region",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": "label_values(coil_players, region)", "refId": "region"},
                    "definition": "label_values(coil_players, region)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def grid(x, y, w=12, h=8):
    return {"x": x, "y": y, "w": w, "h": h}


def players_dashboard():
    quantiles = [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
    panels = [
        panel(1, "CCU by region (humans)", "timeseries",
              [(f'sum by (region) (coil_players{{kind="human",{REGION}}})', "{{region}}")],
              grid(0, 0), description="Concurrent human players reported by game nodes.", stack=True),
        panel(2, "Players now", "stat",
              [(f'sum(coil_players{{kind="human",{REGION}}})', "humans"),
               (f'sum(coil_players{{kind="bot",{REGION}}})', "bots")],
              grid(12, 0, 6, 8)),
        panel(3, "Seats spare (matchmaker view)", "stat",
              [(f'max by (region) (coil_directory_seats_free{{{REGION}}}) / clamp_min(max by (region) (coil_directory_seats_free{{{REGION}}}) + max by (region) (coil_directory_humans{{{REGION}}}), 1)', "{{region}}")],
              grid(18, 0, 6, 8), unit="percentunit", description="Autoscaler target: 15%. Alert below 10%."),
        panel(4, "Rooms by state", "timeseries",
              [(f'max by (region, state) (coil_directory_rooms{{{REGION}}})', "{{region}} {{state}}")],
              grid(0, 8), stack=True),
        panel(5, "Room occupancy: humans per active room, by node", "bargauge",
              [(f'sum by (node) (coil_players{{kind="human",{REGION}}}) / clamp_min(sum by (node) (coil_rooms{{state="active",{REGION}}}), 1)', "{{node}}")],
              grid(12, 8), description="Soft cap 120, hard cap 140. Per-room values are not exported (unbounded labels); this is the per-node mean."),
        panel(6, "Warm rooms and free seats", "timeseries",
              [(f'max by (region) (coil_directory_warm_rooms{{{REGION}}})', "{{region}} warm rooms"),
               (f'max by (region) (coil_directory_seats_free{{{REGION}}})', "{{region}} free seats")],
              grid(0, 16)),
        panel(7, "Join latency (upgrade to first state frame)", "timeseries",
              [(f'histogram_quantile({q}, sum by (le) (rate(coil_join_latency_seconds_bucket{{{REGION}}}[$__rate_interval])))', name) for q, name in quantiles],
              grid(12, 16), unit="s", description="Target: p99 <= 50 ms."),
        panel(8, "Matchmake latency", "timeseries",
              [(f'histogram_quantile({q}, sum by (le) (rate(coil_matchmake_duration_seconds_bucket[$__rate_interval])))', name) for q, name in quantiles],
              grid(0, 24), unit="s"),
        panel(9, "Joins by result (includes reconnects)", "timeseries",
              [(f'sum by (result) (rate(coil_joins_total{{{REGION}}}[$__rate_interval]))', "{{result}}")],
              grid(12, 24), unit="reqps", stack=True),
        panel(10, "Disconnects by reason", "timeseries",
              [(f'sum by (reason) (rate(coil_disconnects_total{{{REGION}}}[$__rate_interval]))', "{{reason}}")],
              grid(0, 32), unit="ops", stack=True),
        panel(11, "Error rates", "timeseries",
              [(f'sum(rate(coil_joins_total{{result!="ok",{REGION}}}[$__rate_interval])) / clamp_min(sum(rate(coil_joins_total{{{REGION}}}[$__rate_interval])), 1e-9)', "join failures"),
               ('sum(rate(coil_matchmake_requests_total{result=~"no_capacity|error"}[$__rate_interval])) / clamp_min(sum(rate(coil_matchmake_requests_total[$__rate_interval])), 1e-9)', "matchmake failures"),
               (f'sum(rate(coil_disconnects_total{{reason=~"slow_client|protocol_error",{REGION}}}[$__rate_interval])) / clamp_min(sum(coil_connections_open{{{REGION}}}), 1)', "bad disconnects per connection")],
              grid(12, 32), unit="percentunit"),
        panel(12, "Matchmake requests by result", "timeseries",
              [('sum by (result) (rate(coil_matchmake_requests_total[$__rate_interval]))', "{{result}}")],
              grid(0, 40), unit="reqps", stack=True),
        panel(13, "Leaderboard writes by result", "timeseries",
              [(f'sum by (result) (rate(coil_leaderboard_writes_total{{{REGION}}}[$__rate_interval]))', "{{result}}")],
              grid(12, 40), unit="ops"),
    ]
    return dashboard("coil-players", "Coil: players, rooms, joins", panels)


def nodes_dashboard():
    panels = [
        panel(1, "Room tick duration p50 / p99 by node", "timeseries",
              [(f'histogram_quantile(0.5, sum by (node, le) (rate(coil_tick_duration_seconds_bucket{{{REGION}}}[$__rate_interval])))', "{{node}} p50"),
               (f'histogram_quantile(0.99, sum by (node, le) (rate(coil_tick_duration_seconds_bucket{{{REGION}}}[$__rate_interval])))', "{{node}} p99")],
              grid(0, 0), unit="s", description="Budget 50 ms at 20 Hz; target p99 <= 2 ms for 140 snakes."),
        panel(2, "Tick overruns per second by node", "timeseries",
              [(f'sum by (node) (rate(coil_tick_overruns_total{{{REGION}}}[$__rate_interval]))', "{{node}}")],
              grid(12, 0), unit="ops"),
        panel(3, "Encode duration p99 by node", "timeseries",
              [(f'histogram_quantile(0.99, sum by (node, le) (rate(coil_encode_duration_seconds_bucket{{{REGION}}}[$__rate_interval])))', "{{node}}")],
              grid(0, 8), unit="s"),
        panel(4, "Egress by node", "timeseries",
              [(f'sum by (node) (rate(coil_ws_bytes_sent_total{{{REGION}}}[$__rate_interval]))', "{{node}}")],
              grid(12, 8), unit="Bps", stack=True,
              description="WebSocket payload bytes sent. Hetzner bills traffic above the included allowance (US: 1-8 TB per server) at about 1 EUR/TB."),
        panel(5, "Egress per human player", "timeseries",
              [(f'sum by (region) (rate(coil_ws_bytes_sent_total{{{REGION}}}[$__rate_interval])) / clamp_min(sum by (region) (coil_players{{kind="human",{REGION}}}), 1)', "{{region}}")],
              grid(0, 16), unit="Bps", description="Target: median <= 2,000 B/s per player."),
        panel(6, "Projected monthly egress by node (30 days at the last hour's rate)", "bargauge",
              [(f'sum by (node) (rate(coil_ws_bytes_sent_total{{{REGION}}}[1h])) * 2592000', "{{node}}")],
              grid(12, 16), unit="decbytes"),
        panel(7, "Ingress by node", "timeseries",
              [(f'sum by (node) (rate(coil_ws_bytes_received_total{{{REGION}}}[$__rate_interval]))', "{{node}}")],
              grid(0, 24), unit="Bps", stack=True),
        panel(8, "Open connections by node", "timeseries",
              [(f'sum by (node) (coil_connections_open{{{REGION}}})', "{{node}}")],
              grid(12, 24), description="A Hetzner Cloud Firewall caps a server at 80,000 concurrent connections."),
        panel(9, "Dropped state frames (slow clients)", "timeseries",
              [(f'sum by (node) (rate(coil_dropped_frames_total{{{REGION}}}[$__rate_interval]))', "{{node}}")],
              grid(0, 32), unit="ops"),
        panel(10, "Node ready / draining", "timeseries",
              [(f'sum by (node) (coil_node_ready{{{REGION}}})', "{{node}} ready"),
               (f'sum by (node) (coil_node_draining{{{REGION}}})', "{{node}} draining")],
              grid(12, 32)),
        panel(11, "CPU by node (cores)", "timeseries",
              [(f'sum by (node) (rate(process_cpu_seconds_total{{job="coil-node",{REGION}}}[$__rate_interval]))', "{{node}}")],
              grid(0, 40)),
        panel(12, "Memory by node (RSS)", "timeseries",
              [(f'sum by (node) (process_resident_memory_bytes{{job="coil-node",{REGION}}})', "{{node}}"),
               (f'sum(process_resident_memory_bytes{{job="coil-node",{REGION}}}) / clamp_min(sum(coil_connections_open{{{REGION}}}), 1)', "bytes per connection (fleet)")],
              grid(12, 40), unit="bytes"),
        panel(13, "Players per core", "timeseries",
              [(f'sum by (node) (coil_players{{kind="human",{REGION}}}) / clamp_min(sum by (node) (rate(process_cpu_seconds_total{{job="coil-node",{REGION}}}[$__rate_interval])), 0.01)', "{{node}}")],
              grid(0, 48), description="Human CCU per busy core; target >= 5,000."),
        panel(14, "Open file descriptors by node", "timeseries",
              [(f'sum by (node) (process_open_fds{{job="coil-node",{REGION}}})', "{{node}}")],
              grid(12, 48)),
    ]
    return dashboard("coil-nodes", "Coil: game nodes (ticks, egress, resources)", panels)


def fleet_dashboard():
    panels = [
        panel(1, "Game nodes by state (autoscaler)", "timeseries",
              [('max by (state) (coil_autoscaler_nodes)', "{{state}}")],
              grid(0, 0), stack=True),
        panel(2, "Directory nodes by state (matchmaker)", "timeseries",
              [('max by (region, state) (coil_directory_nodes)', "{{region}} {{state}}")],
              grid(12, 0), stack=True),
        panel(3, "Autoscaler decisions", "timeseries",
              [('sum by (action) (increase(coil_autoscaler_decisions_total[$__rate_interval]))', "{{action}}")],
              grid(0, 8)),
        panel(4, "Server create failures by reason", "timeseries",
              [('sum by (reason) (increase(coil_autoscaler_create_failures_total[$__rate_interval]))', "{{reason}}")],
              grid(12, 8), description="resource_unavailable = Hetzner rationing (since 2026-06-26); limit_exceeded = project server limit."),
        panel(5, "Hetzner API requests remaining", "timeseries",
              [('min(coil_autoscaler_api_requests_remaining)', "remaining")],
              grid(0, 16), description="3,600 per hour per project, refilled at 1 per second."),
        panel(6, "Datastores up", "stat",
              [('redis_up', "redis {{node}}"), ('pg_up', "postgres {{node}}")],
              grid(12, 16)),
        panel(7, "Scrape targets down", "stat",
              [('count by (job) (up == 0)', "{{job}}")],
              grid(0, 24)),
        panel(8, "Matchmaker request rate by node", "timeseries",
              [('sum by (node) (rate(coil_matchmake_requests_total[$__rate_interval]))', "{{node}}")],
              grid(12, 24), unit="reqps"),
    ]
    return dashboard("coil-fleet", "Coil: fleet, autoscaler, datastores", panels)


def main():
    out_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent / "dashboards"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, board in (("coil-players.json", players_dashboard()),
                        ("coil-nodes.json", nodes_dashboard()),
                        ("coil-fleet.json", fleet_dashboard())):
        (out_dir / name).write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
