"""The service's Prometheus figures over a run: samples scraped before and after, and what
their differences say (kept tokens, FLOPs saved, batches, queue waits)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, float] | None:
    """Every sample of /metrics as name{labels} -> value; None where there is none."""
    try:
        r = httpx.get(f"{url}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def delta(before: dict, after: dict, prefix: str) -> float:
    return sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith(prefix + "{"))


def pruning_figures(before: dict | None, after: dict | None) -> dict:
    if not before or not after:
        return {}
    kept_n = delta(before, after, "ltp_kept_tokens_count")
    if kept_n <= 0:
        return {}
    dense = delta(before, after, "ltp_flops_dense_total")
    return {
        "mean_kept_tokens": delta(before, after, "ltp_kept_tokens_sum") / kept_n,
        "mean_input_tokens": delta(before, after, "ltp_input_tokens_sum") / kept_n,
        "flops_saved": 1 - delta(before, after, "ltp_flops_total") / dense if dense else None,
    }


def kept_histogram(before: dict | None, after: dict | None) -> list[tuple[float, float]]:
    """(upper bound, sequences) per bucket of ltp_kept_tokens, over the run."""
    if not before or not after:
        return []
    cumulative: dict[float, float] = {}
    for key, value in after.items():
        if key.startswith("ltp_kept_tokens_bucket{"):
            le = key.split("le=")[1].split(",")[0].rstrip("}")
            bound = float("inf") if le in ("+Inf", "inf") else float(le)
            cumulative[bound] = cumulative.get(bound, 0.0) + value - before.get(key, 0.0)
    bounds = sorted(cumulative)
    return [(b, cumulative[b] - (cumulative[bounds[i - 1]] if i else 0.0))
            for i, b in enumerate(bounds)]


def engine_figures(before: dict | None, after: dict | None) -> dict:
    """What the service saw over the run: batches, their size and time, queue waits."""
    if not before or not after:
        return {}
    batches = delta(before, after, "ltp_batch_size_count")
    queued = delta(before, after, "ltp_queue_seconds_count")
    return {"batches": batches,
            "mean_batch_size": delta(before, after, "ltp_batch_size_sum") / batches if batches else None,
            "mean_batch_seconds": (delta(before, after, "ltp_inference_seconds_sum") / batches
                                   if batches else None),
            "mean_queue_seconds": (delta(before, after, "ltp_queue_seconds_sum") / queued
                                   if queued else None),
            "cost_per_token_s": {k: v for k, v in after.items()
                                 if k.startswith("ltp_cost_per_token_seconds")}}
