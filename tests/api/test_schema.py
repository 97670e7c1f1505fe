"""The OpenAPI schema is complete and clean; the docs page works offline."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_schema_generates_without_warnings(tmp_path):
    """``--fail-on-warn``: every view, parameter and field has a type the schema can state."""
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn",
         "--file", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr
    assert out.read_text().startswith("openapi: 3")


def test_schema_endpoint_describes_the_api(client):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    for path in [
        "/api/v1/me/", "/api/v1/tokens/", "/api/v1/tokens/{id}/", "/api/v1/teams/",
        "/api/v1/jobs/", "/api/v1/jobs/{id}/", "/api/v1/jobs/{id}/abort/",
        "/api/v1/jobs/{id}/events/", "/api/v1/job-kinds/",
    ]:  # fmt: skip
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An API token from /accounts/ or /api/v1/tokens/: `Token <key>`.",
    }
    events = schema["paths"]["/api/v1/jobs/{id}/events/"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {"id", "after", "limit", "type"}


def test_docs_page_serves_its_assets_locally(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn" not in page.lower()
    assets = re.findall(r'<script[^>]+src="([^"]+)"', page) + re.findall(
        r'<link[^>]+href="([^"]+)"', page
    )
    assert any("swagger-ui-bundle" in a for a in assets)
    # Swagger UI's setup comes from this page's own URL (?script), not inline (CSP).
    [setup] = [a.replace("&amp;", "&") for a in assets if a.startswith("/api/docs/?")]
    assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
    for asset in assets:
        asset = asset.replace("&amp;", "&")
        assert asset.startswith("/static/") or asset == setup, asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content if served.streaming else [served.content])
    script = client.get(setup).content.decode()
    assert "/api/schema/" in script.replace("\\u002F", "/")
