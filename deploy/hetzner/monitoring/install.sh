#!/bin/sh
# Installs this directory's Prometheus, Alertmanager and Grafana files on the monitoring
# server and reloads the services. Run from the repository root:
#   deploy/hetzner/monitoring/install.sh root@<monitoring public IP>
# Secrets (read-only Hetzner token, Alertmanager webhook URLs) are not in the repository;
# place them first (docs/operations.md, "Secrets"). Validates on the server with the
# installed promtool/amtool before reloading, so a bad file never replaces a good one.
set -eu
target="${1:?usage: install.sh root@monitoring-host}"
here=$(cd "$(dirname "$0")" && pwd)
stage=/root/coil-monitoring

rsync -a --delete "$here/" "$target:$stage/"
ssh "$target" sh -eu <<REMOTE
promtool check config $stage/prometheus.yml
amtool check-config $stage/alertmanager.yml
install -d -m 0755 /etc/prometheus/rules /var/lib/grafana/dashboards/coil
install -m 0644 $stage/prometheus.yml /etc/prometheus/prometheus.yml
rm -f /etc/prometheus/rules/*.yml
install -m 0644 $stage/rules/*.yml /etc/prometheus/rules/
install -m 0644 $stage/alertmanager.yml /etc/prometheus/alertmanager.yml
install -m 0644 $stage/grafana/provisioning/datasources/*.yml /etc/grafana/provisioning/datasources/
install -m 0644 $stage/grafana/provisioning/dashboards/*.yml /etc/grafana/provisioning/dashboards/
install -m 0644 $stage/grafana/dashboards/*.json /var/lib/grafana/dashboards/coil/
chown -R grafana:grafana /var/lib/grafana/dashboards
systemctl reload prometheus
systemctl reload prometheus-alertmanager
systemctl restart grafana-server
REMOTE
echo "monitoring configuration installed on $target"
