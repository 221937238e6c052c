#!/usr/bin/env python3
"""Renders the Helm chart in deploy/kubernetes/coil with Helm's own engine and checks what comes out.

    check_kubernetes.py CHART CI_VALUES_DIR SCHEMAS_DIR REPO_ROOT OUT_DIR [--agones-crds DIR]

1. `helm lint --strict` with every values file in CI_VALUES_DIR.
2. Renders each of them (Helm's Go engine through helm-python-sdk, i.e. `helm template`).
3. Validates every manifest: built-in kinds with kubernetes-validate (strict: unknown fields
   fail) for each Kubernetes version in KUBERNETES_VERSIONS; Agones kinds with the schemas in
   SCHEMAS_DIR, whose pod templates and metadata are Kubernetes' own definitions of the same
   version; with --agones-crds (a directory of Agones CRD YAML, rendered from an Agones
   checkout by validate.sh when one is available) also against the real openAPIV3Schema.
4. Checks what no schema knows: the rules Agones' admission webhook applies to a Counter
   FleetAutoscaler, that the Fleet's counters match the node's MAX_ROOMS x ROOM_SOFT_CAP, that the
   grace period outlasts the drain, that secrets only arrive by secretKeyRef, that every env
   variable the chart sets is one the code reads, the non-root security context, probes,
   selectors, and the Dockerfile's user and health check against the chart.
5. Renders values that must be refused (secret values, a Fleet name too long, bad buffers) and
   checks each is refused with its message.

Writes the rendered manifests to OUT_DIR. Exits non-zero with one line per problem.
"""

import argparse
import copy
import json
import pathlib
import re
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import referencing
import yaml

# Agones 1.5x supports Kubernetes 1.32-1.35; the newest schemas kubernetes-validate ships too.
KUBERNETES_VERSIONS = ["1.32", "1.35", "1.37"]
RELEASE, NAMESPACE = "coil", "games"
AGONES_SCHEMAS = {
    ("agones.dev/v1", "Fleet"): "fleet-agones-v1.json",
    ("agones.dev/v1", "GameServer"): "gameserver-agones-v1.json",
    ("autoscaling.agones.dev/v1", "FleetAutoscaler"): "fleetautoscaler-autoscaling-v1.json",
}
CRD_NAMES = {
    ("agones.dev/v1", "Fleet"): "fleets.agones.dev",
    ("autoscaling.agones.dev/v1", "FleetAutoscaler"): "fleetautoscalers.autoscaling.agones.dev",
}
# Variables Agones sets in the pod itself, not the chart.
SET_BY_AGONES = {"AGONES_SDK_HTTP_PORT", "AGONES_SDK_GRPC_PORT"}
SECRET_VARIABLES = {"REDIS_URL", "DATABASE_URL", "INTERNAL_SECRET"}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def render(chart_dir, values):
    with helm.Chart.load(str(chart_dir)) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    documents = []
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                documents.append((template, document))
    return rendered, documents


def kubernetes_definitions(version):
    """kubernetes-validate's strict definitions of one version, as a referencing registry."""
    contents = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version
    )
    return referencing.Resource.from_contents(contents) @ referencing.Registry()


def validate_agones(document, where, schemas_dir, registries):
    key = (document.get("apiVersion"), document.get("kind"))
    schema = json.loads((schemas_dir / AGONES_SCHEMAS[key]).read_text())
    for version, registry in registries.items():
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in error.path)
            problem(where, f"Agones schema (Kubernetes {version} definitions): {path}: {error.message}")


def openapi_to_jsonschema(node):
    """The CRD's openAPIV3Schema as JSON Schema: drop the Kubernetes extensions, honour nullable."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "default", "format"):
            continue
        if key in ("properties", "patternProperties"):
            converted[key] = {name: openapi_to_jsonschema(sub) for name, sub in value.items()}
        else:
            converted[key] = openapi_to_jsonschema(value)
    if node.get("nullable") and "type" in converted:
        converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def load_crds(directory):
    crds = {}
    for path in sorted(pathlib.Path(directory).glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                for version in document["spec"]["versions"]:
                    schema = version["schema"]["openAPIV3Schema"]
                    crds[(document["metadata"]["name"], version["name"])] = openapi_to_jsonschema(schema)
    return crds


def validate_against_crd(document, where, crds):
    key = (document.get("apiVersion"), document.get("kind"))
    if key not in CRD_NAMES:
        return
    version = key[0].split("/")[1]
    schema = crds.get((CRD_NAMES[key], version))
    if schema is None:
        problem(where, f"no CRD {CRD_NAMES[key]} {version} among the Agones CRDs given")
        return
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in error.path)
        problem(where, f"Agones CRD {CRD_NAMES[key]}: {path}: {error.message}")


def env_map(container):
    return {entry["name"]: entry for entry in container.get("env", [])}


def env_value(container, name):
    entry = env_map(container).get(name)
    return None if entry is None else entry.get("value")


def pod_spec_of(document):
    kind = document["kind"]
    if kind == "Deployment":
        return document["spec"]["template"]
    if kind == "Fleet":
        return document["spec"]["template"]["spec"]["template"]
    return None


def declared_env_variables(repo_root):
    """Every `env = "NAME"` (clap) and `env::var("NAME")` in the Rust sources: what the code reads."""
    names = set()
    for path in (repo_root / "crates").glob("*/src/**/*.rs"):
        text = path.read_text()
        names.update(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
        names.update(re.findall(r'env::var(?:_os)?\(\s*"([A-Z0-9_]+)"', text))
    return names


def dockerfile_facts(path):
    text = path.read_text()
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    healthcheck = re.findall(r"^HEALTHCHECK(?:[^\n]*\\\n)*[^\n]*", text, re.M)
    exposed = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", text, re.M) for p in line.split()}
    return {
        "user": user[-1] if user else None,
        "healthcheck": healthcheck[-1] if healthcheck else "",
        "exposed": exposed,
        "entrypoint": re.findall(r"^ENTRYPOINT\s+(.+)$", text, re.M),
    }


def check_container(where, container, values, expect):
    security = container.get("securityContext", {})
    for key, wanted in [
        ("runAsNonRoot", True),
        ("allowPrivilegeEscalation", False),
        ("readOnlyRootFilesystem", True),
        ("runAsUser", values["securityContext"]["runAsUser"]),
    ]:
        if security.get(key) != wanted:
            problem(where, f"securityContext.{key} is {security.get(key)!r}, want {wanted!r}")
    if security.get("capabilities", {}).get("drop") != ["ALL"]:
        problem(where, "securityContext.capabilities.drop must be [ALL]")
    requests = container.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= set(requests):
        problem(where, "resources.requests must name cpu and memory")
    if "cpu" in container.get("resources", {}).get("limits", {}):
        problem(where, "no CPU limit: throttling shows up as tick stutter")
    image = container.get("image", "")
    if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
        problem(where, f"image {image!r} must carry a version tag")
    for probe, path in expect["probes"].items():
        got = container.get(probe, {}).get("httpGet", {}).get("path")
        if got != path:
            problem(where, f"{probe} must GET {path}, has {got!r}")
    liveness = container.get("livenessProbe")
    if liveness and liveness.get("httpGet", {}).get("path") != "/api/health":
        problem(where, "a liveness probe must GET /api/health")
    for name, entry in env_map(container).items():
        if name in SECRET_VARIABLES and "secretKeyRef" not in entry.get("valueFrom", {}):
            problem(where, f"{name} must come from a Secret (secretKeyRef), never a value")
        value = str(entry.get("value", ""))
        if re.search(r"://[^/@\s]+:[^/@\s]+@", value):
            problem(where, f"{name} carries credentials in a URL")


def check_rendered(name, values, documents, repo_root, dockerfile):
    by_kind = {}
    for template, document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
        if document["kind"] == "Secret":
            problem(template, "the chart must never create a Secret (secrets by reference only)")
        labels = document["metadata"].get("labels", {})
        if labels.get("app.kubernetes.io/instance") != RELEASE:
            problem(template, "missing app.kubernetes.io/instance label")
    where = f"[{name}]"
    read_by_code = declared_env_variables(repo_root)
    facts = dockerfile_facts(dockerfile)

    fleets = by_kind.get("Fleet", [])
    if len(fleets) != 1:
        problem(where, f"expected one Fleet, rendered {len(fleets)}")
        return
    fleet = fleets[0]
    fleet_name = fleet["metadata"]["name"]
    if len(fleet_name) > 20:
        problem(where, f"Fleet name {fleet_name!r} longer than 20 (NODE_ID would pass 32)")
    gameserver = fleet["spec"]["template"]["spec"]
    pod = gameserver["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    node = containers.get(gameserver.get("container"))
    if node is None:
        problem(where, f"spec.container {gameserver.get('container')!r} names no container")
        return
    check_container(f"{where} Fleet container", node, values, {
        "probes": {"readinessProbe": "/api/ready", "startupProbe": "/api/health"},
    })
    if node.get("args") != ["node"]:
        problem(where, "game nodes must run `coil node`")
    if node.get("ports"):
        problem(where, "the game container declares ports; Agones adds them from spec.ports")
    env = env_map(node)
    if env_value(node, "AGONES") != "1":
        problem(where, "game nodes must set AGONES=1")
    if env.get("NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        problem(where, "NODE_ID must be the GameServer's name (fieldRef metadata.name)")
    ports = {p["name"]: p for p in gameserver.get("ports", [])}
    game_port = ports.get(env_value(node, "AGONES_PORT_NAME"))
    if game_port is None:
        problem(where, "AGONES_PORT_NAME names no GameServer port")
    elif str(game_port.get("containerPort")) != env_value(node, "PORT"):
        problem(where, "the GameServer port's containerPort is not the node's PORT")
    counters = gameserver.get("counters", {})
    max_rooms, soft_cap = int(env_value(node, "MAX_ROOMS")), int(env_value(node, "ROOM_SOFT_CAP"))
    players = counters.get(env_value(node, "AGONES_PLAYERS_COUNTER"), {})
    rooms = counters.get(env_value(node, "AGONES_ROOMS_COUNTER"), {})
    if players.get("capacity") != max_rooms * soft_cap:
        problem(where, f"players counter capacity {players.get('capacity')} != MAX_ROOMS x ROOM_SOFT_CAP = {max_rooms * soft_cap}")
    if rooms.get("capacity") != max_rooms:
        problem(where, f"rooms counter capacity {rooms.get('capacity')} != MAX_ROOMS {max_rooms}")
    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    for variable in ("DRAIN_TIMEOUT_SECS", "MATCH_DRAIN_DEADLINE_SECS"):
        drain = int(env_value(node, variable))
        if grace <= drain:
            problem(where, f"terminationGracePeriodSeconds {grace} must outlast {variable} {drain}")
    if gameserver["health"]["periodSeconds"] <= int(env_value(node, "AGONES_HEALTH_SECS")):
        problem(where, "AGONES_HEALTH_SECS must be shorter than health.periodSeconds")
    annotations = pod["metadata"].get("annotations", {})
    if values["metrics"]["scrapeAnnotations"] and annotations.get("prometheus.io/port") != env_value(node, "PORT"):
        problem(where, "the node's prometheus.io/port is not its PORT")

    for autoscaler in by_kind.get("FleetAutoscaler", []):
        spec = autoscaler["spec"]
        if spec["fleetName"] != fleet_name:
            problem(where, f"FleetAutoscaler targets {spec['fleetName']!r}, the Fleet is {fleet_name!r}")
        counter = spec["policy"].get("counter") or {}
        if spec["policy"]["type"] != "Counter" or counter.get("key") not in counters:
            problem(where, "the FleetAutoscaler must be a Counter policy on a counter of the Fleet")
            continue
        # The rules of Agones' admission webhook (CounterPolicy.ValidateCounterPolicy).
        low, high, buffer = counter.get("minCapacity", 0), counter["maxCapacity"], counter["bufferSize"]
        if low > high:
            problem(where, "minCapacity must not exceed maxCapacity")
        if isinstance(buffer, int):
            if buffer <= 0 or high < buffer or (low != 0 and low < buffer):
                problem(where, f"bufferSize {buffer}: must be > 0, <= maxCapacity, and <= minCapacity unless that is 0")
        else:
            match = re.fullmatch(r"(\d+)%", buffer)
            if not match or not 1 <= int(match.group(1)) <= 99:
                problem(where, f"bufferSize {buffer!r} must be 1% to 99%")
            if low < 1:
                problem(where, "a percentage bufferSize needs minCapacity > 0")
        seats = players.get("capacity", 1)
        if low % seats or high % seats:
            problem(where, "min/maxCapacity should be whole nodes of seats")

    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for deployment in deployments.values():
        template = deployment["spec"]["template"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        if not selector.items() <= template["metadata"]["labels"].items():
            problem(where, f"Deployment {deployment['metadata']['name']} selector does not match its pods")
        for container in template["spec"]["containers"]:
            check_container(f"{where} Deployment container", container, values, {
                "probes": {"readinessProbe": "/api/ready", "livenessProbe": "/api/health"},
            })
            if container.get("args") != ["matchmaker"]:
                problem(where, "the Deployment must run `coil matchmaker`")
            http = [p for p in container.get("ports", []) if p["name"] == "http"]
            if not http or str(http[0]["containerPort"]) != env_value(container, "PORT"):
                problem(where, "the matchmaker's http port is not its PORT")
            if template["spec"].get("automountServiceAccountToken") is not False:
                problem(where, "the matchmaker needs no Kubernetes API token")

    pod_labels = [(pod_spec_of(d)["metadata"]["labels"]) for d in fleets + list(deployments.values())]
    for kind in ("Service", "PodDisruptionBudget"):
        for document in by_kind.get(kind, []):
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            if not any(selector.items() <= labels.items() for labels in pod_labels):
                problem(where, f"{kind} {document['metadata']['name']} selects no pods")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                if service is None or backend["port"].get("name") not in {p["name"] for p in service["spec"]["ports"]}:
                    problem(where, f"Ingress backend {backend} is not a rendered Service port")

    for document in fleets + list(deployments.values()):
        for container in pod_spec_of(document)["spec"]["containers"]:
            for variable in env_map(container):
                if variable not in read_by_code and variable not in SET_BY_AGONES:
                    problem(where, f"{document['kind']} sets {variable}, which nothing in crates/ reads")

    # The image the chart runs: its user, health check and ports.
    user = facts["user"] or ""
    if user.split(":")[0] != str(values["securityContext"]["runAsUser"]):
        problem("Dockerfile", f"USER {user!r} is not the chart's runAsUser {values['securityContext']['runAsUser']}")
    if "/api/ready" not in facts["healthcheck"]:
        problem("Dockerfile", "HEALTHCHECK must call /api/ready")
    if not {8787, 8788} <= facts["exposed"]:
        problem("Dockerfile", "EXPOSE must list 8787 (node) and 8788 (matchmaker)")
    if not any("coil" in entry for entry in facts["entrypoint"]):
        problem("Dockerfile", "ENTRYPOINT must be the coil binary (the chart passes only the subcommand)")


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def relabel(labels, rules):
    """Prometheus relabelling (keep, drop, replace), enough for the scrape file; None = dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(labels.get(l, "") for l in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = rule.get("replacement", "$1")
            replacement = re.sub(r"\$\{(\d+)\}|\$(\d+)", lambda m: match.group(int(m.group(1) or m.group(2))) or "", replacement)
            labels[rule["target_label"]] = replacement
    return labels


def check_scrape_config(name, documents, scrape_config, values):
    """Runs the scrape jobs' relabelling over the pods the chart renders, as Prometheus'
    Kubernetes pod discovery would present them, and checks the labels the alerts rely on."""
    if not values["metrics"]["scrapeAnnotations"]:
        return
    jobs = yaml.safe_load(scrape_config.read_text())["scrape_configs"]
    expected = {"Fleet": ("coil-node", "game-node"), "Deployment": ("coil-matchmaker", "matchmaker")}
    for _, document in documents:
        if document["kind"] not in expected:
            continue
        pod = pod_spec_of(document)
        pod_name = "coil-node-x7k2p-9wq4m" if document["kind"] == "Fleet" else "coil-matchmaker-5d9f7-abcde"
        containers = [c["name"] for c in pod["spec"]["containers"]]
        if document["kind"] == "Fleet":
            containers.append("agones-gameserver-sidecar")  # added by Agones
        meta = {"__meta_kubernetes_pod_name": pod_name, "__meta_kubernetes_pod_ip": "10.1.2.3",
                "__meta_kubernetes_pod_phase": "Running", "__address__": "10.1.2.3"}
        meta.update({f"__meta_kubernetes_pod_label_{sanitize(k)}": v for k, v in pod["metadata"]["labels"].items()})
        meta.update({f"__meta_kubernetes_pod_annotation_{sanitize(k)}": v
                     for k, v in pod["metadata"].get("annotations", {}).items()})
        targets = []
        for job in jobs:
            for container in containers:
                result = relabel({**meta, "__meta_kubernetes_pod_container_name": container}, job["relabel_configs"])
                if result is not None:
                    targets.append((job["job_name"], result))
        job_name, role = expected[document["kind"]]
        where = f"[{name}] scrape {document['kind']}"
        if [job for job, _ in targets] != [job_name]:
            problem(where, f"expected one target in job {job_name}, got {[job for job, _ in targets]}")
            continue
        labels = targets[0][1]
        port = next(env_value(c, "PORT") for c in pod["spec"]["containers"] if c["name"] == "coil")
        wanted = {"__address__": f"10.1.2.3:{port}", "__metrics_path__": "/metrics", "node": pod_name, "role": role}
        if document["kind"] == "Fleet":
            wanted["region"] = values["region"]
        for label, value in wanted.items():
            if labels.get(label) != value:
                problem(where, f"label {label} is {labels.get(label)!r}, want {value!r}")


# Values that must be refused, with a piece of the message that says why.
MUST_FAIL = [
    ("a Redis URL given as a value", {"redis": {"existingSecret": "r", "url": "redis://:pw@x"}}, "additional properties 'url'"),
    ("a database password given as a value", {"postgresql": {"existingSecret": "p", "password": "pw"}}, "additional properties 'password'"),
    ("no Redis secret", {"redis": {"existingSecret": ""}}, "redis.existingSecret is required"),
    ("no image", {"image": {"repository": ""}}, "image.repository is required"),
    ("no public key", {"joinToken": {"existingSecret": "k", "publicKey": ""}}, "joinToken.publicKey is required"),
    ("a malformed public key", {"joinToken": {"existingSecret": "k", "publicKey": "not-a-key"}}, "publicKey"),
    ("a Fleet name over 20 characters", {"fullnameOverride": "coil-eu-central-2"}, "longer than 20"),
    ("a percentage buffer of 0%", {"gameNodes": {"autoscaler": {"bufferSize": "0%"}}}, "bufferSize"),
    ("a percentage buffer without a floor", {"gameNodes": {"autoscaler": {"minNodes": 0}}}, "minNodes must be at least 1"),
    ("more minimum than maximum nodes", {"gameNodes": {"autoscaler": {"minNodes": 5, "maxNodes": 2}}}, "must not exceed maxNodes"),
    ("pings slower than Agones' health period", {"gameNodes": {"healthPingSeconds": 5}}, "healthPingSeconds must be shorter"),
    ("an http:// public URL", {"gameNodes": {"publicUrlTemplate": "http://{address}:{port}"}}, "publicUrlTemplate"),
    ("an unknown setting", {"gameNodes": {"replica": 3}}, "additional properties 'replica'"),
]


def merge(base, override):
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def main():
    parser = argparse.ArgumentParser()
    for name in ("chart", "values_dir", "schemas_dir", "repo_root", "out_dir"):
        parser.add_argument(name, type=pathlib.Path)
    parser.add_argument("--agones-crds", type=pathlib.Path)
    parser.add_argument("--dockerfile", type=pathlib.Path)
    parser.add_argument("--scrape-config", type=pathlib.Path)
    args = parser.parse_args()
    dockerfile = args.dockerfile or args.repo_root / "deploy/container/Dockerfile"
    chart_values = yaml.safe_load((args.chart / "values.yaml").read_text())
    registries = {version: kubernetes_definitions(version) for version in KUBERNETES_VERSIONS}
    crds = load_crds(args.agones_crds) if args.agones_crds else None
    counted = {"documents": 0}

    values_files = sorted(args.values_dir.glob("*.yaml"))
    if not values_files:
        problem(str(args.values_dir), "no values files to render")
    for values_file in values_files:
        values = yaml.safe_load(values_file.read_text()) or {}
        name = values_file.stem
        lint = helm.lint(str(args.chart), values, strict=True, namespace=NAMESPACE)
        for message in lint.get("messages", []):
            # Severity 1 is INFO (for example "icon is recommended"); 2 WARNING, 3 ERROR.
            if message["severity"] >= 2:
                problem(f"helm lint [{name}]", f"{message['path']}: {message['error']}")
        for error in lint.get("errors", []):
            problem(f"helm lint [{name}]", str(error))
        try:
            rendered, documents = render(args.chart, values)
        except Exception as error:  # noqa: BLE001 - Helm's message is the finding
            problem(f"helm template [{name}]", str(error).strip().splitlines()[-1])
            continue
        out = args.out_dir / name
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifests.yaml").write_text(
            "".join(f"---\n# Source: {t}\n{text}" for t, text in sorted(rendered.items()) if not t.endswith("NOTES.txt"))
        )
        for template, document in documents:
            counted["documents"] += 1
            where = f"[{name}] {template} {document.get('kind')}/{document.get('metadata', {}).get('name')}"
            key = (document.get("apiVersion"), document.get("kind"))
            if key in AGONES_SCHEMAS:
                validate_agones(document, where, args.schemas_dir, registries)
                if crds is not None:
                    validate_against_crd(document, where, crds)
                continue
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(document, version, strict=True)
                except kubernetes_validate.ValidationError as error:
                    path = ".".join(str(p) for p in error.path)
                    problem(where, f"Kubernetes {version}: {path}: {error.message}")
                except kubernetes_validate.SchemaNotFoundError as error:
                    problem(where, f"Kubernetes {version}: {error.message}")
        check_rendered(name, merge(chart_values, values), documents, args.repo_root, dockerfile)
        if args.scrape_config:
            check_scrape_config(name, documents, args.scrape_config, merge(chart_values, values))

    # The refusals start from the fewest values that install, so each one tests one change.
    minimal = args.values_dir / "minimal-values.yaml"
    base = yaml.safe_load(minimal.read_text()) if minimal.exists() else {}
    for description, override, expected in MUST_FAIL:
        try:
            render(args.chart, merge(base, override))
            problem("must be refused", f"{description} rendered without an error")
        except Exception as error:  # noqa: BLE001
            if expected not in str(error):
                problem("must be refused", f"{description}: refused, but not for {expected!r}: {str(error)[-300:]}")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    crd_note = "and the real Agones CRDs" if crds is not None else "(real Agones CRDs not given)"
    print(
        f"{len(values_files)} values files, {counted['documents']} manifests valid for Kubernetes "
        f"{', '.join(KUBERNETES_VERSIONS)} {crd_note}; {len(MUST_FAIL)} bad values refused"
    )


if __name__ == "__main__":
    main()
