#!/bin/bash
# The prepared GPU run (one command, about 5 minutes on an H200; made by scripts/gpu_bundle.py,
# carried as gpu-bundle/): dense and compact forward of reviews-minilm-ltp with `ltp bench`
# at batch 1, 32 and 256 in bf16 on the varlen engine (and on padded attention at 256), each
# with its keep decisions and labels against the fp32 CPU forward, then `ltp serve --device
# cuda` answering /classify. Writes bench-*.json, gpu.md and serve.log to $OUT.
#   run: bash scripts/gpu_bench.sh        (DEVICE=cpu runs the same steps on the CPU; N=64
#   times fewer inputs, for a dry run)
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
DEVICE=${DEVICE:-cuda}
BUNDLE=${BUNDLE:-gpu-bundle}
MODEL=$BUNDLE/reviews-minilm-ltp
DATA=$BUNDLE/amazon-food
PY=${PY:-python3}
N=${N:-1000}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TQDM_DISABLE=1
if ! $PY -c "import fastapi, pydantic_settings, orjson, fastapi_offline" 2>/dev/null; then
  $PY -m pip install --quiet --no-index --no-deps "$BUNDLE"/wheels/*.whl 2>&1 | tail -2
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } \
  | tee "$OUT/machine.txt"
bench() {  # engine batch dtype [max examples]
  local name="bench-$1-b$2-$3"
  timeout 150 $PY -m app.cli bench "$MODEL" --dataset "$DATA" --device "$DEVICE" --engine "$1" \
    --batch-size "$2" --dtype "$3" --max-examples "${4:-$N}" --rounds 3 --json \
    > "$OUT/$name.json" 2> "$OUT/$name.err" || echo "$name failed: $(tail -1 "$OUT/$name.err")"
}
bench varlen 1 bf16 $((N < 200 ? N : 200))
bench varlen 32 bf16
bench varlen 256 bf16
bench padded 256 bf16
$PY - "$OUT" <<'PYEOF' | tee "$OUT/gpu.md"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| engine | batch | dense seq/s | compact seq/s | speedup | relative FLOPs | speedup x FLOPs | keep agreement | label agreement |")
print("|---|---|---|---|---|---|---|---|---|")
for f in sorted(out.glob("bench-*.json")):
    try:
        r = json.loads(f.read_text())
    except ValueError:
        continue
    eng, batch = f.stem.split("-")[1:3]
    print(f"| {eng} | {batch[1:]} | {r['dense_seq_per_s']:.0f} | {r['pruned_seq_per_s']:.0f} | {r['speedup']:.2f} | "
          f"{r['relative_flops']:.3f} | {r['speedup'] * r['relative_flops']:.2f} | "
          f"{100 * r['keep_agreement_vs_fp32']:.2f}% | {100 * r['label_agreement_vs_fp32']:.2f}% |")
PYEOF
# the service on the GPU: one /classify
$PY -m app.cli serve --models-dir "$BUNDLE" --device "$DEVICE" --models reviews-minilm-ltp \
  --default-model reviews-minilm-ltp --port 8765 > "$OUT/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 120); do curl -sf localhost:8765/readyz >/dev/null 2>&1 && break; sleep 1; done
curl -s localhost:8765/classify -H 'content-type: application/json' \
  -d '{"inputs": ["the best coffee I have had", "stale and bitter"], "details": true}' \
  | tee "$OUT/classify.json"; echo
curl -s localhost:8765/info > "$OUT/info.json"
kill $SERVER; wait $SERVER 2>/dev/null
