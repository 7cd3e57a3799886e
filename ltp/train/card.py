"""What a build tells its user: the test-split summary of an artifact and its markdown card
(data, settings, dense against LTP, precisions, baselines, time and machine)."""

from __future__ import annotations

from dataclasses import asdict

from ltp.core.artifact import Artifact
from ltp.core.precision import MAX_DROP


def summary(artifact: Artifact) -> dict:
    """Test-split figures of an artifact: baselines, dense and (for LTP) the pruned model."""
    ev = artifact.meta.eval
    base = ev.get("baselines") or {}
    pick = lambda m: {k: m[k] for k in ("accuracy", "macro_f1", "per_class") if k in m}  # noqa: E731
    dense = (ev.get("dense") or ev.get("dense_parent") or {}).get("test")
    out = {"majority_accuracy": base.get("majority", {}).get("accuracy"),
           "baseline_majority": pick(base["majority"]) if base else None,
           "baseline_tfidf": pick(base["tfidf"]) if base else None,
           "dense": pick(dense) if dense else None, "ltp": None}
    if "ltp" in ev:
        test = ev["ltp"]["test"]
        out["ltp"] = pick(test) | {k: test[k] for k in ("relative_flops", "relative_model_flops",
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


def _kept(ev: dict) -> str:
    return ", ".join(f"{x:.2f}" for x in ev["kept_fraction_per_layer"])


def model_card(recipe, artifact: Artifact, sizes: dict) -> str:
    """A markdown card of ``recipe`` (an ``ltp.train.recipes.Recipe``) built into ``artifact``:
    data, settings, dense vs LTP figures, time and machine."""
    meta, prov = artifact.meta, artifact.meta.provenance
    lines = [f"# {recipe.name}", "", recipe.description or "", "",
             f"- data set: `{recipe.dataset}`, split sizes train / dev / test: "
             f"{sizes['train']} / {sizes['dev']} / {sizes['test']}",
             f"- labels: {', '.join(meta.labels)}; max length {meta.max_length}; "
             f"score normaliser N = {meta.pruning.normalizer}",
             f"- wall time: {prov.get('wall_seconds')} s on {prov.get('machine')}", ""]
    lines += _checks_section(meta.eval)
    if recipe.finetune is not None:
        ev = meta.eval["dense"]
        lines += [f"Dense fine-tune of `{recipe.base}`: {asdict(recipe.finetune)}", "",
                  "| split | accuracy |", "|---|---|",
                  *(f"| {s} | {_pct(ev[s]['accuracy'])} |" for s in ("dev", "test"))]
        lines += _training_section(prov.get("training", {}))
        lines += _baselines_section(meta.eval, ev["test"], None)
        return "\n".join(lines) + "\n"
    ltp_eval, dense = meta.eval["ltp"], meta.eval.get("dense_parent") or {}
    lines += [f"LTP from `{recipe.parent}`: {asdict(recipe.prune)}", "",
              f"Learned thresholds: {', '.join(f'{t:.5f}' for t in meta.pruning.thresholds())}", "",
              "| split | dense accuracy | LTP accuracy | relative FLOPs (paper) | whole model "
              "| kept fraction after each layer |", "|---|---|---|---|---|---|"]
    for s in ("dev", "test"):
        ev, d = ltp_eval[s], dense.get(s, {})
        dense_acc = _pct(d["accuracy"]) if d else "-"
        lines.append(f"| {s} | {dense_acc} | {_pct(ev['accuracy'])} | {ev['relative_flops']:.3f} "
                     f"| {ev['relative_model_flops']:.3f} | {_kept(ev)} |")
    for stage in ("soft", "hard"):
        st = prov.get(stage, {})
        first, last = st.get("first_loss", float("nan")), st.get("last_loss", float("nan"))
        lines.append(f"\n{stage} stage: {st.get('steps')} steps, {st.get('seconds')} s, "
                     f"loss {first:.3f} -> {last:.3f}")
    auto = (prov.get("calibration") or {}).get("auto")
    if auto:
        tried = ", ".join(f"{t['target']} -> {_pct(t['dev_accuracy'])}" for t in auto["tried"]
                          if "dev_accuracy" in t)
        lines += ["", f"FLOPs budget {auto['chosen']} chosen automatically: {auto['reason']}. "
                      f"Tried (budget -> dev accuracy with calibrated thresholds): {tried}."]
    lines += _precision_section(meta.eval.get("precision"))
    lines += _baselines_section(meta.eval, dense.get("test"), ltp_eval["test"])
    return "\n".join(lines) + "\n"


def _precision_section(table: dict | None) -> list[str]:
    """Dev accuracy of the pruned model per precision (what ``--dtype auto`` chooses from)."""
    if not table:
        return []
    lines = ["", "Precision (dev split; `ltp serve --dtype auto` serves the fastest within "
                 f"{MAX_DROP * 100:g} pt of fp32):", "",
             "| precision | accuracy | relative FLOPs | on the building CPU |", "|---|---|---|---|"]
    lines += [f"| {name} | {_pct(row['accuracy'])} | {row['relative_flops']:.3f} | "
              f"{row.get('native', '-')} |" for name, row in table.items()]
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


def _baselines_section(ev: dict, dense: dict | None, ltp_test: dict | None) -> list[str]:
    base = ev.get("baselines")
    if not base:
        return []
    rows = [("majority class", base["majority"], f"always `{base['majority']['label']}`"),
            ("TF-IDF + logistic regression", base["tfidf"],
             f"1-2 grams, balanced class weights, C={base['tfidf']['C']} (chosen on dev)")]
    if dense:
        rows.append(("dense", dense, "relative FLOPs 1.000"))
    if ltp_test:
        rows.append(("LTP", ltp_test, f"relative FLOPs {ltp_test['relative_flops']:.3f}"))
    lines = ["", "Test split against baselines:", "", "| model | accuracy | macro-F1 | notes |",
             "|---|---|---|---|"]
    lines += [f"| {name} | {_pct(m['accuracy'])} | {_pct(m['macro_f1'])} | {note} |"
              for name, m, note in rows]
    with_classes = [(name, m) for name, m, _ in rows if m.get("per_class")]
    labels = list(with_classes[0][1]["per_class"]) if with_classes else []
    if labels:
        lines += ["", "Per class (precision / recall), test split:", "",
                  "| model | " + " | ".join(f"{lab} (n={with_classes[0][1]['per_class'][lab]['support']})"
                                          for lab in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for name, m in with_classes:
            cells = [f"{_pct(m['per_class'][lab]['precision'])} / {_pct(m['per_class'][lab]['recall'])}"
                     for lab in labels]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
