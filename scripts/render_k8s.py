"""Render deploy/k8s/kustomization.yaml into one multi-document manifest (resources in
order, `images` tags applied), for validation where no kustomize binary is installed.

    python scripts/render_k8s.py deploy/k8s > rendered.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def render(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    tags = {i["name"]: i.get("newTag") for i in kustomization.get("images", [])}
    docs = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((folder / resource).read_text()):
            for container in _containers(doc):
                name = container["image"].split(":")[0]
                if tags.get(name):
                    container["image"] = f"{name}:{tags[name]}"
            docs.append(doc)
    return docs


def _containers(doc: dict) -> list[dict]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


if __name__ == "__main__":
    sys.stdout.write(yaml.safe_dump_all(render(Path(sys.argv[1])), sort_keys=False))
