#!/usr/bin/env bash
# `make image` without a Docker engine: the Dockerfile built by podman (buildah) on this host.
#   MODEL_SOURCE  build | copy | volume (the Dockerfile's argument; default copy)
#   MODEL         the artifact baked in (default reviews-minilm-ltp)
#   MODELS_DIR    built artifacts for MODEL_SOURCE=copy (default models)
#   TARGET        cpu (default) or gpu
#   IMAGE         tag (default ltp-serve:TARGET, ltp-serve:TARGET-volume for MODEL_SOURCE=volume)
#   PIP_INDEX_URL the index of the build's pip (default: PyPI)
#   TORCH_WHEELS  a folder holding the torch CPU wheel, served on loopback as the build's torch
#                 index (default: this host's pip find-links, when it has the wheel); empty:
#                 the public CPU index the Dockerfile names
#   CA_BUNDLE     the CA bundle a proxy needs, passed as the build secret `cacert`
set -euo pipefail
source "$(dirname "$0")/env.sh"
MODEL_SOURCE=${MODEL_SOURCE:-copy}
MODEL=${MODEL:-reviews-minilm-ltp}
MODELS_DIR=${MODELS_DIR:-models}
TARGET=${TARGET:-cpu}
if [ "$MODEL_SOURCE" = volume ]; then IMAGE=${IMAGE:-ltp-serve:$TARGET-volume}; else IMAGE=${IMAGE:-ltp-serve:$TARGET}; fi
PIP_INDEX_URL=${PIP_INDEX_URL:-https://pypi.org/simple}
CA_BUNDLE=${CA_BUNDLE:-$(python3 -m pip config get global.cert 2>/dev/null || echo /etc/ssl/certs/ca-certificates.crt)}
if [ -z "${TORCH_WHEELS+set}" ]; then
    TORCH_WHEELS=$(python3 -m pip config get global.find-links 2>/dev/null || true)
fi

"$(dirname "$0")/base-image.sh"

args=(--format docker --network host --layers --target "$TARGET" -t "$IMAGE"
      --build-arg "MODEL_SOURCE=$MODEL_SOURCE" --build-arg "MODEL=$MODEL"
      --build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
[ -s "$CA_BUNDLE" ] && args+=(--secret "id=cacert,src=$CA_BUNDLE")
[ "$MODEL_SOURCE" = copy ] && args+=(--build-context "prebuilt=$(realpath "$MODELS_DIR")")

server=""
trap '[ -n "$server" ] && kill "$server"' EXIT
if [ -n "$TORCH_WHEELS" ] && compgen -G "$TORCH_WHEELS/torch-*.whl" >/dev/null; then
    # a one-project simple index (torch/ -> the wheels) on loopback, reached through --network host
    index="$PODMAN_STORE/torch-index"
    rm -rf "$index" && mkdir -p "$index/torch"
    ln -s "$TORCH_WHEELS"/torch-*.whl "$index/torch/"
    port=${TORCH_INDEX_PORT:-18761}  # fixed: the index URL is a build argument, part of the cache key
    python3 -m http.server --bind 127.0.0.1 --directory "$index" "$port" >/dev/null 2>&1 &
    server=$!
    args+=(--build-arg "TORCH_INDEX_URL=http://127.0.0.1:$port/")
fi

start=$(date +%s.%N)
podman build "${args[@]}" .
end=$(date +%s.%N)
python3 - "$IMAGE" "$start" "$end" <<'PY'
import json, subprocess, sys
image, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
size = json.loads(subprocess.check_output(["podman", "image", "inspect", image]))[0]["Size"]
print(f"built {image} in {end - start:.1f} s, {size / 1e6:.0f} MB")
PY
