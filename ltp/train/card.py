"""What a build tells its user: the test-split summary of an artifact and its markdown card
(data, head, settings, dense against LTP, precisions, baselines, time and machine), with
the head's own figures: accuracy and macro-F1 (single-label), micro/macro-F1 and per-label
F1 (multi-label), Spearman and MAE (regression)."""

from __future__ import annotations

from dataclasses import asdict

from ltp.core.artifact import Artifact
from ltp.core.heads import MULTI_LABEL, REGRESSION, SINGLE_LABEL
from ltp.core.precision import MAX_DROP

# the columns of each problem type's tables: (key, heading, as a percentage)
FIGURES = {
    SINGLE_LABEL: [("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True)],
    MULTI_LABEL: [("micro_f1", "micro-F1", True), ("macro_f1", "macro-F1", True),
                  ("exact_match", "exact match", True)],
    REGRESSION: [("spearman", "Spearman", False), ("mae", "MAE", False),
                 ("pearson", "Pearson", False)],
}
BASELINE_NAMES = {
    SINGLE_LABEL: ("majority class", "TF-IDF + logistic regression"),
    MULTI_LABEL: ("most frequent label", "TF-IDF + one-vs-rest logistic regression"),
    REGRESSION: ("training mean", "TF-IDF + ridge regression"),
}
SUMMARY_KEYS = ("metric", "score", "accuracy", "macro_f1", "per_class", "micro_f1", "per_label",
                "exact_match", "thresholds", "spearman", "mae", "rmse", "pearson")


def _pick(m: dict) -> dict:
    return {k: m[k] for k in SUMMARY_KEYS if k in m}


def summary(artifact: Artifact) -> dict:
    """Test-split figures of an artifact: baselines, dense and (for LTP) the pruned model."""
    ev = artifact.meta.eval
    base = ev.get("baselines") or {}
    dense = (ev.get("dense") or ev.get("dense_parent") or {}).get("test")
    majority = base.get("majority", {})
    out = {"problem_type": artifact.meta.head.problem_type,
           "majority_accuracy": majority.get("score", majority.get("accuracy")),
           "baseline_majority": _pick(base["majority"]) if base else None,
           "baseline_tfidf": _pick(base["tfidf"]) if base else None,
           "dense": _pick(dense) if dense else None, "ltp": None}
    if "ltp" in ev:
        test = ev["ltp"]["test"]
        out["ltp"] = _pick(test) | {k: test[k] for k in ("relative_flops", "relative_model_flops",
                                                        "kept_fraction_per_layer")}
        out["target_flops"] = artifact.meta.provenance.get("target_flops")
        auto = (artifact.meta.provenance.get("calibration") or {}).get("auto")
        if auto:
            out["target_flops_reason"] = auto["reason"]
    out["warnings"] = ev.get("data_warnings", [])
    out["weak"] = ev.get("weak", [])
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _figure(m: dict, key: str, pct: bool) -> str:
    return "-" if key not in m else _pct(m[key]) if pct else f"{m[key]:.3f}"


def _kept(ev: dict) -> str:
    return ", ".join(f"{x:.2f}" for x in ev["kept_fraction_per_layer"])


def _head_line(meta) -> str:
    head = meta.head
    line = f"- head: {head.problem_type}"
    if head.multi_label:
        thresholds = head.label_thresholds(len(meta.labels))
        line += ("; label thresholds (tuned on dev): "
                 + ", ".join(f"{lab} {t:g}" for lab, t in zip(meta.labels, thresholds, strict=True)))
    return line


def model_card(recipe, artifact: Artifact, sizes: dict) -> str:
    """A markdown card of ``recipe`` (an ``ltp.train.recipes.Recipe``) built into ``artifact``:
    data, head, settings, dense vs LTP figures, time and machine."""
    meta, prov = artifact.meta, artifact.meta.provenance
    kind = meta.head.problem_type
    key, heading, pct = FIGURES[kind][0]
    lines = [f"# {recipe.name}", "", recipe.description or "", "",
             f"- data set: `{recipe.dataset}`, split sizes train / dev / test: "
             f"{sizes['train']} / {sizes['dev']} / {sizes['test']}",
             f"- labels: {', '.join(meta.labels)}; max length {meta.max_length}; "
             f"score normaliser N = {meta.pruning.normalizer}", _head_line(meta),
             f"- wall time: {prov.get('wall_seconds')} s on {prov.get('machine')}", ""]
    lines += _checks_section(meta.eval)
    if recipe.finetune is not None:
        ev = meta.eval["dense"]
        lines += [f"Dense fine-tune of `{recipe.base}`: {asdict(recipe.finetune)}", "",
                  f"| split | {heading} |", "|---|---|",
                  *(f"| {s} | {_figure(ev[s], key, pct)} |" for s in ("dev", "test"))]
        lines += _training_section(prov.get("training", {}))
        lines += _precision_section(meta.eval.get("precision"), heading)
        lines += _baselines_section(meta.eval, kind, ev["test"], None)
        return "\n".join(lines) + "\n"
    ltp_eval, dense = meta.eval["ltp"], meta.eval.get("dense_parent") or {}
    lines += [f"LTP from `{recipe.parent}`: {asdict(recipe.prune)}", "",
              f"Learned thresholds: {', '.join(f'{t:.5f}' for t in meta.pruning.thresholds())}", "",
              f"| split | dense {heading} | LTP {heading} | relative FLOPs (paper) | whole model "
              "| kept fraction after each layer |", "|---|---|---|---|---|---|"]
    for s in ("dev", "test"):
        ev, d = ltp_eval[s], dense.get(s, {})
        lines.append(f"| {s} | {_figure(d, key, pct)} | {_figure(ev, key, pct)} | "
                     f"{ev['relative_flops']:.3f} | {ev['relative_model_flops']:.3f} | {_kept(ev)} |")
    for stage in ("soft", "hard"):
        st = prov.get(stage) or {}
        first, last = st.get("first_loss", float("nan")), st.get("last_loss", float("nan"))
        lines.append(f"\n{stage} stage: {st.get('steps')} steps, {st.get('seconds')} s, "
                     f"loss {first:.3f} -> {last:.3f}")
    lines += _seeds_section(meta.eval.get("seeds"), heading, pct)
    auto = (prov.get("calibration") or {}).get("auto")
    if auto:
        tried = ", ".join(f"{t['target']} -> {_pct(t['dev_score'])}" for t in auto["tried"]
                          if "dev_score" in t)
        lines += ["", f"FLOPs budget {auto['chosen']} chosen automatically: {auto['reason']}. "
                      f"Tried (budget -> dev {heading} with calibrated thresholds): {tried}."]
    lines += _precision_section(meta.eval.get("precision"), heading)
    lines += _baselines_section(meta.eval, kind, dense.get("test"), ltp_eval["test"])
    return "\n".join(lines) + "\n"


def _seeds_section(seeds: dict | None, heading: str, pct: bool) -> list[str]:
    """Every seed's run of a build with ``seeds``, and which one the artifact is."""
    if not seeds:
        return []
    unit = " pt" if pct else ""
    scale = 100 if pct else 1
    spread = seeds["spread"]
    lines = ["", f"Seeds: one build per seed; this artifact is seed {seeds['chosen']}, the "
                 f"{seeds['rule']}. Spread (max - min): dev {scale * spread['dev']:.2f}{unit}, "
                 f"test {scale * spread['test']:.2f}{unit}, relative FLOPs "
                 f"{spread['relative_flops']:.3f}.", "",
             f"| seed | dev {heading} | test {heading} | relative FLOPs (test) |", "|---|---|---|---|"]
    for r in seeds["runs"]:
        dev, test = (_figure({"score": r[s]}, "score", pct) for s in ("dev", "test"))
        kept = " (kept)" if r["seed"] == seeds["chosen"] else ""
        lines.append(f"| {r['seed']}{kept} | {dev} | {test} | {r['relative_flops']:.3f} |")
    return lines


def _precision_section(table: dict | None, heading: str) -> list[str]:
    """The dev figure of the model per precision (what ``--dtype auto`` chooses from)."""
    if not table:
        return []
    lines = ["", "Precision (dev split; `ltp serve --dtype auto` serves the fastest within "
                 f"{MAX_DROP * 100:g} pt of fp32):", "",
             f"| precision | {heading} | relative FLOPs | on the building CPU |", "|---|---|---|---|"]
    lines += [f"| {name} | {_pct(row.get('score', row.get('accuracy')))} | "
              f"{row['relative_flops']:.3f} | {row.get('native', '-')} |"
              for name, row in table.items()]
    return lines


def _checks_section(ev: dict) -> list[str]:
    lines = []
    if ev.get("weak"):
        lines += ["**WARNING: the dense model is not clearly better than the baselines.**", "",
                  *(f"- {r}" for r in ev["weak"]), ""]
    if ev.get("data_warnings"):
        lines += ["Data warnings:", "", *(f"- {w}" for w in ev["data_warnings"]), ""]
    return lines


def _training_section(training: dict) -> list[str]:
    if not training.get("dev_history"):
        return []
    return ["", f"Training: {training['steps']} of {training['planned_steps']} planned steps "
                f"({'stopped early' if training['stopped_early'] else 'ran to the end'}); "
                f"best dev checkpoint at step {training['best_step']} restored."]


def _tfidf_note(tfidf: dict, kind: str) -> str:
    if kind == REGRESSION:
        return f"1-2 grams, alpha={tfidf['alpha']} (chosen on dev)"
    if kind == MULTI_LABEL:
        return f"1-2 grams, C={tfidf['C']}, label thresholds tuned on dev (both chosen on dev)"
    return f"1-2 grams, balanced class weights, C={tfidf['C']} (chosen on dev)"


def _baselines_section(ev: dict, kind: str, dense: dict | None, ltp_test: dict | None) -> list[str]:
    base = ev.get("baselines")
    if not base:
        return []
    majority, tfidf = BASELINE_NAMES[kind]
    rows = [(majority, base["majority"], f"always `{base['majority']['label']}`"),
            (tfidf, base["tfidf"], _tfidf_note(base["tfidf"], kind))]
    if dense:
        rows.append(("dense", dense, "relative FLOPs 1.000"))
    if ltp_test:
        rows.append(("LTP", ltp_test, f"relative FLOPs {ltp_test['relative_flops']:.3f}"))
    figures = FIGURES[kind]
    lines = ["", "Test split against baselines:", "",
             "| model | " + " | ".join(h for _, h, _ in figures) + " | notes |",
             "|---|" + "---|" * len(figures) + "---|"]
    lines += ["| " + " | ".join([name, *(_figure(m, k, p) for k, _, p in figures), note]) + " |"
              for name, m, note in rows]
    return lines + _per_label_section(rows, "per_class" if kind == SINGLE_LABEL else "per_label")


def _per_label_section(rows: list, key: str) -> list[str]:
    """Per class (precision / recall) or per label (F1), test split."""
    with_labels = [(name, m) for name, m, _ in rows if m.get(key)]
    if not with_labels:
        return []
    first = with_labels[0][1][key]
    labels = list(first)
    title = ("Per class (precision / recall), test split:" if key == "per_class"
             else "Per label (F1), test split:")
    lines = ["", title, "", "| model | " + " | ".join(
        f"{lab} (n={first[lab]['support']})" for lab in labels) + " |", "|---|" + "---|" * len(labels)]
    for name, m in with_labels:
        cells = [(f"{_pct(m[key][lab]['precision'])} / {_pct(m[key][lab]['recall'])}"
                  if key == "per_class" else _pct(m[key][lab]["f1"])) for lab in labels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
