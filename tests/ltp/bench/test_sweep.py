"""The sweep's progress: one step per row it writes."""

from ltp.bench.sweep import SweepConfig, run_sweep
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
