"""Two service instances behind the repo's nginx config, scraped by the repo's Prometheus
config, all on loopback."""

from tests.deploy.test_configs import load_script


def test_scaleout_on_loopback(models_dir):
    summary = load_script("scaleout").run(models_dir, "tiny-ltp", instances=2, requests=30)
    assert summary["answered_200"] == 30
    assert all(n > 0 for n in summary["served_per_instance"].values()), summary
    assert summary["ok"], summary["problems"]
