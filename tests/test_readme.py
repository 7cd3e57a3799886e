"""The README is a front page: short, every link resolves, its figures are the reports'."""

import re
from pathlib import Path

from ltp.bench.headline import current, render

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) < 200
    for target in ("make serve", "make serve-quick", "make test", "curl -s localhost:8000/classify"):
        assert target in README


def test_every_link_of_the_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if link.startswith(("http://", "https://")):
                continue
            assert (page.parent / link).exists(), f"{page.name} links to a missing {link}"


def test_the_headline_table_is_the_reports():
    assert current(README) == render(ROOT), "run `make headline` after changing a report"
