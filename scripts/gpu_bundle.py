"""What the prepared GPU run (``scripts/gpu_bench.sh``) carries to a machine that reaches
no registry and has none of the project's data packages: the trained model in bf16 (half
the bytes, so the working tree travels under 64 MiB), the data set's test split as a data
folder, and wheels of the service's packages that the GPU machine's image lacks.

    .venv/bin/python scripts/gpu_bundle.py models/reviews-minilm-ltp --dataset amazon-food
    # then, on the device: carry ["gpu-bundle"], run `bash scripts/gpu_bench.sh`
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ltp.core.artifact import load_artifact, save_artifact
from ltp.data.datasets import load_dataset

# the service's packages missing from the GPU image (its python is 3.12; pydantic and
# orjson are compiled, so their wheels are asked for that python and platform)
SERVICE_WHEELS = ("fastapi", "fastapi-offline", "starlette", "pydantic", "pydantic-core",
                  "pydantic-settings", "python-dotenv", "orjson", "uvicorn", "h11", "annotated-types",
                  "typing-inspection", "python-multipart")


def bundle(model: str, dataset: str, out: Path, train_rows: int = 64) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    artifact = load_artifact(model, dtype="bf16")
    target = out / Path(model).name
    save_artifact(artifact, target)
    data = load_dataset(dataset)
    folder = out / dataset
    folder.mkdir(exist_ok=True)
    for split, rows in (("train", data.train[:train_rows]), ("test", data.test)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for e in rows:
                f.write(json.dumps({"text": e.text, "label": data.labels[e.label]}) + "\n")
    wheels = out / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels),
                    "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                    "--no-deps", *SERVICE_WHEELS], check=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"model": str(target), "data": str(folder), "wheels": len(list(wheels.glob("*.whl"))),
            "mib": round(size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--dataset", default="amazon-food")
    parser.add_argument("--out", default="gpu-bundle")
    args = parser.parse_args()
    print(json.dumps(bundle(args.model, args.dataset, Path(args.out)), indent=1))


if __name__ == "__main__":
    main()
