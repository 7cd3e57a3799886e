"""/docs and /redoc work offline: every script, style sheet and icon their pages name is
served by the service itself, from the fastapi-offline package, not from a CDN."""

from html.parser import HTMLParser

import httpx
import pytest

# what each kind of asset must be, by its tag (and a link's rel)
CONTENT_TYPES = {"script": "javascript", "stylesheet": "text/css", "shortcut icon": "image/png"}


class Assets(HTMLParser):
    """(kind, URL) of each <script src> and <link href> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.found.append(("script", a["src"]))
        elif tag == "link" and a.get("href"):
            self.found.append((a.get("rel") or "", a["href"]))


def assets_of(html: str) -> list[tuple[str, str]]:
    parser = Assets()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("page,kinds", [("/docs", {"script", "stylesheet", "shortcut icon"}),
                                        ("/redoc", {"script", "shortcut icon"})])
def test_docs_pages_load_their_assets_from_the_service(server, page, kinds):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text, "nothing from elsewhere"
        assets = assets_of(r.text)
        assert {kind for kind, _ in assets} == kinds
        for kind, url in assets:
            assert url.startswith("/"), url
            got = client.get(url)
            assert got.status_code == 200, url
            assert CONTENT_TYPES[kind] in got.headers["content-type"], (url, got.headers)
            assert len(got.content) > 1000, url
        scripts = [client.get(url).text for kind, url in assets if kind == "script"]
        assert any("SwaggerUIBundle" in s or "Redoc" in s for s in scripts)
        assert client.get("/openapi.json").json()["info"]["title"] == "LTP classifier service"


def test_the_parser_finds_scripts_styles_and_icons():
    html = ('<link rel="stylesheet" href="/a.css"><link rel="shortcut icon" href="/i.png">'
            '<script src="/b.js"></script><script>inline()</script>')
    assert assets_of(html) == [("stylesheet", "/a.css"), ("shortcut icon", "/i.png"),
                               ("script", "/b.js")]


def test_a_missing_asset_is_a_404_with_the_error_body(client):
    r = client.get("/static-offline-docs/no-such-file.js")
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
