"""Malformed and over-limit requests beside good traffic, end to end against a real
`ltp serve` of a tiny model."""

import json
from argparse import Namespace

from loadtest.scenarios.bad_input import bad_input, bad_requests


def test_bad_input_run_gets_every_4xx_and_loses_no_good_request(models_dir, tiny_csv, tmp_path):
    """The scenario end to end against a real `ltp serve` of a tiny model."""
    args = Namespace(models_dir=str(models_dir), model="tiny-ltp", dataset=str(tiny_csv),
                     clients=2, duration=2, out=str(tmp_path / "bad"), serve_args=[],
                     server_dir=None)
    result = bad_input(args)
    assert result["unexpected"] == {}, result["bad"]
    assert result["server_errors"] == 0 and result["tracebacks_in_log"] == 0
    assert result["good_lost"] == 0 and result["good"].get("200", 0) > 0
    assert all(sum(case["answers"].values()) >= 1 for case in result["bad"].values())
    report = (tmp_path / "bad" / "report.md").read_text()
    assert "| a body over the byte limit | `/classify` | 413 | {'413':" in report


def test_bad_requests_follow_the_service_limits():
    from app.settings import Settings

    cases = bad_requests(Settings(max_inputs=3, max_text_chars=50, max_body_bytes=100,
                                  max_model_name_chars=8))
    assert json.loads(cases["too many inputs"][1])["inputs"] == ["a"] * 4
    assert len(json.loads(cases["a text over the character limit"][1])["inputs"]) == 51
    assert len(cases["a body over the byte limit"][1]) > 100
    assert len(json.loads(cases["model name over the limit"][1])["model"]) == 9
    assert {status for _, _, status in cases.values()} == {413, 422}
