#!/bin/sh
# Runs ON the Packer builder server (Debian 12, as root) and turns it into the Coil
# snapshot. Everything slow (apt) happens here, once, never at game-node boot.
# Inputs: /tmp/coil (binary), /tmp/coil-systemd/ (units + sysctl), /tmp/operations.md,
# COIL_VERSION.
set -eu

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get -y upgrade
# node_exporter: host metrics on 9100. haproxy: matchmakers and the autoscaler route to
# the Redis primary through it. curl, socat and git: acme.sh on the autoscaler.
# chrony: token expiry and drain deadlines assume a correct clock.
apt-get install -y --no-install-recommends \
  prometheus-node-exporter haproxy caddy curl ca-certificates socat git chrony nftables
# haproxy runs only where cloud-init configures it; caddy (TLS in front of the game
# node) only on game nodes, whose user data writes its Caddyfile.
systemctl disable haproxy caddy

install -m 0755 -o root -g root /tmp/coil /usr/local/bin/coil
/usr/local/bin/coil --version || true
install -d -m 0755 /etc/coil /usr/share/doc/coil
install -d -m 0700 /etc/coil/secrets /etc/coil/tls
install -m 0644 /tmp/operations.md /usr/share/doc/coil/operations.md
for unit in coil-node.service coil-matchmaker.service coil-autoscaler.service; do
  install -m 0644 "/tmp/coil-systemd/$unit" "/etc/systemd/system/$unit"
done
install -m 0644 /tmp/coil-systemd/99-coil-sockets.conf /etc/sysctl.d/99-coil-sockets.conf
echo tcp_bbr > /etc/modules-load.d/coil-bbr.conf
systemctl daemon-reload
# Nothing Coil starts by itself: each role's cloud-init enables its own unit.
systemctl disable coil-node.service coil-matchmaker.service coil-autoscaler.service 2>/dev/null || true
systemctl enable prometheus-node-exporter chrony

# acme.sh (wildcard certificate for game nodes; used on the autoscaler only).
git clone --depth 1 https://github.com/acmesh-official/acme.sh.git /opt/acme.sh
echo "$COIL_VERSION" > /etc/coil/image-version

# Make the snapshot boot like a fresh server: new machine-id, new SSH host keys, and
# cloud-init runs again for the new instance.
apt-get -y autopurge
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/coil /tmp/coil-systemd /tmp/operations.md
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
cloud-init clean --logs --machine-id
rm -rf /var/lib/cloud/*
journalctl --flush
journalctl --rotate --vacuum-time=1s
# Discard freed blocks so the snapshot (billed per GB) stays small.
fstrim --all || true
sync
