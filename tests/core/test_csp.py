"""Content-Security-Policy: the header on every page, and templates with nothing inline
that it would block (tests/browser/test_csp.py checks the pages in a real browser)."""

import re

import pytest

from tests.conftest import ROOT

TEMPLATE_DIRS = [
    ROOT / "templates",
    *ROOT.glob("plugins/*/*/templates"),
    *ROOT.glob("apps/*/templates"),
]
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "style element": re.compile(r"<style[\s>]", re.I),
}


def test_templates_have_no_inline_script_or_style():
    found = []
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            text = path.read_text()
            found += [
                f"{path.relative_to(ROOT)}: {what}"
                for what, rx in INLINE.items()
                if rx.search(text)
            ]
    assert found == []


@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/accounts/", "/api/docs/", "/admin/"])
def test_every_page_carries_the_policy(people, client, path):
    people.staff.is_superuser = True
    people.staff.save()
    if path != "/accounts/login/":
        client.force_login(people.staff)
    response = client.get(path)
    assert response.status_code == 200
    policy = dict(
        d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";") if d.strip()
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


def test_the_api_docs_load_their_setup_from_a_script_file(people, client):
    client.force_login(people.owner)
    page = client.get("/api/docs/").content.decode()
    [setup] = re.findall(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', page)
    script = client.get(setup.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
