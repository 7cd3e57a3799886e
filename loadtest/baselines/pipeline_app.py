"""The naive alternative: a plain FastAPI app calling transformers.pipeline once per request.

    LTP_BASELINE_MODEL=models/reviews-minilm uvicorn loadtest.baselines.pipeline_app:app --port 8001

No batching across requests, no pruning; the same request shape as the LTP service.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

MODEL = os.environ.get("LTP_BASELINE_MODEL", "models/reviews-minilm")
classifier = pipeline("text-classification", model=MODEL, tokenizer=MODEL, device="cpu")
# truncate where the LTP service does, so both see the same tokens
_meta = Path(MODEL) / "ltp.json"
MAX_LENGTH = json.loads(_meta.read_text())["max_length"] if _meta.is_file() else 512
app = FastAPI(title="naive pipeline baseline")


class Request(BaseModel):
    inputs: str | list[str]
    model: str | None = None


@app.post("/classify")
def classify(req: Request) -> dict:
    texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
    out = classifier(texts, truncation=True, max_length=MAX_LENGTH)
    return {"results": [{"label": o["label"], "score": o["score"]} for o in out]}


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "alive"}
