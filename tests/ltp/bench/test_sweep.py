"""The sweep: its progress, its rows per seed, and the table and plot of their medians."""

import pytest

from ltp.bench.sweep import SweepConfig, run_sweep
from ltp.bench.sweep_table import markdown_table, plot, settings
from ltp.data.datasets import load_dataset
from ltp.train.stages import PruneConfig
from tests.conftest import assert_bar_reaches


def test_num_rows_counts_every_run():
    cfg = SweepConfig(lambdas=[0.5], topk_targets=[0.5], truncate_lengths=[8], prune=PruneConfig(),
                      flops_targets=[0.6])
    # dense x2, truncation, top-k (+ fine-tune), LTP lambda, LTP target with its top-k (+ fine-tune)
    assert cfg.num_rows() == 9
    cfg.topk_finetune, cfg.artifacts = False, ["a", "b"]
    assert cfg.num_rows() == 2 + 1 + 1 + 1 + 2 + 2


def test_progress_bar_steps_once_per_row(capsys, tiny_artifact_dir, tiny_csv):
    cfg = SweepConfig(lambdas=[], topk_targets=[0.5, 0.3], truncate_lengths=[8, 16],
                      prune=PruneConfig(), topk_finetune=False)
    rows = run_sweep(tiny_artifact_dir, load_dataset(str(tiny_csv)), cfg, progress=True)
    assert len(rows) == cfg.num_rows() == 6
    err = capsys.readouterr().err
    assert "sweep" in err and "6/6" in err
    assert_bar_reaches(err, "sweep", 6)
    # a row per budget asked, in order; fewer tokens or a lower quota cost fewer FLOPs
    assert [(r["method"], r["setting"]) for r in rows] == [
        ("dense", "no pruning"), ("dense", "last-layer only"), ("truncation", "max 8 tokens"),
        ("truncation", "max 16 tokens"), ("top-k", "cascade to 0.5"), ("top-k", "cascade to 0.3")]
    flops = [r["relative_flops"] for r in rows]
    assert flops[0] == 1.0 and flops[2] < flops[3] < 1.0 and flops[5] < flops[4] < 1.0


def test_num_rows_repeats_the_trained_runs_per_seed():
    cfg = SweepConfig(lambdas=[0.5], topk_targets=[0.5], truncate_lengths=[8], prune=PruneConfig(),
                      flops_targets=[0.6], seeds=[0, 1, 2])
    # dense x2, truncation, top-k once and its fine-tune x3, lambda x3, (LTP, top-k, fine-tune) x3
    assert cfg.num_rows() == 2 + 1 + (1 + 3) + 3 + 3 * 3
    cfg.topk_finetune = False
    assert cfg.num_rows() == 2 + 1 + 1 + 3 + 3 * 2


def test_each_seed_trains_its_own_ltp_and_topk_rows(tiny_artifact_dir, tiny_csv):
    cfg = SweepConfig(lambdas=[], topk_targets=[], truncate_lengths=[], flops_targets=[0.6],
                      prune=PruneConfig(soft_epochs=1, hard_epochs=1, distill=0.5), seeds=[0, 1])
    rows = run_sweep(tiny_artifact_dir, load_dataset(str(tiny_csv)), cfg)
    assert len(rows) == cfg.num_rows() == 2 + 2 * 3
    trained = [(r["method"], r["seed"]) for r in rows[2:]]
    assert trained == [("LTP", 0), ("top-k", 0), ("top-k + fine-tune", 0),
                       ("LTP", 1), ("top-k", 1), ("top-k + fine-tune", 1)]
    assert rows[0]["seed"] == rows[1]["seed"] == ""  # untrained rows run once
    # one line a setting in the table, each seed's accuracy beside the median
    table = markdown_table(rows).splitlines()[2:]
    assert len(table) == 2 + 3
    ltp_line = next(line for line in table if line.startswith("| LTP |"))
    accuracies = [100 * r["accuracy"] for r in rows if r["method"] == "LTP"]
    assert f"0: {accuracies[0]:.1f} / 1: {accuracies[1]:.1f}" in ltp_line
    # every trained setting's rows record how often its two seeds decide alike
    for method in ("LTP", "top-k + fine-tune"):
        alike = {r["seed_agreement"] for r in rows if r["method"] == method}
        assert len(alike) == 1 and 0.0 <= next(iter(alike)) <= 1.0
    assert all("seed_agreement" not in r for r in rows if r["method"] in ("dense", "top-k"))
    (ltp,) = [p for p in settings(rows) if p["method"] == "LTP"]
    assert f"decide alike on {100 * ltp['seed_agreement']:.1f}%)" in ltp_line


def _rows(method, setting, accuracies, flops=0.5):
    return [{"method": method, "setting": setting, "seed": s, "accuracy": a,
             "relative_flops": flops + 0.001 * s, "relative_model_flops": flops,
             "kept_fraction_per_layer": f"1.000 0.{s}00"} for s, a in enumerate(accuracies)]


def test_settings_take_the_median_over_seeds_and_keep_first_seen_order():
    rows = [*_rows("LTP", "target 0.5", [0.80, 0.84, 0.82]), *_rows("dense", "no pruning", [0.9], 1.0)]
    ltp, dense = settings(rows)
    assert (ltp["method"], ltp["runs"], ltp["accuracy"]) == ("LTP", 3, 0.82)
    assert ltp["relative_flops"] == 0.501 and ltp["kept_fraction_per_layer"] == "1.000 0.200"
    assert (dense["runs"], dense["accuracy"]) == (1, 0.9)


def test_the_plot_draws_medians_and_the_seeds_range_as_error_bars(tmp_path):
    rows = [*_rows("LTP", "target 0.5", [0.80, 0.84, 0.82]),
            *_rows("LTP", "target 0.4", [0.78], 0.4),
            *_rows("truncation", "max 16 tokens", [0.70], 0.45)]
    figure = plot(rows, tmp_path / "p.png", "t")
    ax = figure.axes[0]
    drawn = {line.get_label(): [tuple(p) for p in line.get_xydata()] for line in ax.lines}
    assert drawn == {"LTP": [(0.4, 78.0), (0.501, 82.0)], "truncation": [(0.45, 70.0)]}
    (bars,) = ax.collections  # one error bar, for the setting with several seeds
    (segment,) = bars.get_segments()
    assert segment.tolist() == [[0.501, pytest.approx(80.0)], [0.501, pytest.approx(84.0)]]
    assert (tmp_path / "p.png").exists()


def test_an_ltp_row_says_what_the_parent_taught():
    from ltp.bench.sweep import _setting

    prune = {"target_flops": 0.35, "score_norm": "median", "distill": 0.5}
    assert _setting(prune) == "FLOPs target 0.35, median scores, soft stage, distill 0.5"
    assert _setting({**prune, "distill_hidden": 1.0, "ranking": 2.0, "ranking_top": 20}) == (
        "FLOPs target 0.35, median scores, soft stage, distill 0.5, ranking 2.0 (top 20), "
        "hidden states 1.0")


def test_the_prune_options_reach_the_stages():
    from ltp.cli.commands import _prune_config
    from ltp.cli.parser import build_parser

    args = build_parser().parse_args(["prune", "--model", "m", "--dataset", "d", "--out", "o",
                                      "--distill", "0.5", "--distill-hidden", "2"])
    cfg = _prune_config(args)
    assert (cfg.distill, cfg.distill_hidden) == (0.5, 2.0)
    assert cfg.stage(64, soft=False).distill_hidden == 2.0
