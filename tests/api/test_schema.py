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


# --- values plugins extend: enumerated from the registries, when the schema is generated ------
def _schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def _enum(schema: dict, prop: dict) -> list:
    if "enum" in prop:
        return prop["enum"]
    [ref] = [part["$ref"] for part in prop.get("allOf", []) if "$ref" in part]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["enum"]


def test_job_kinds_a_user_may_submit_are_enumerated_answers_carry_any(client):
    from apps.jobs.kinds import all_kinds

    schema = _schema(client)
    components = schema["components"]["schemas"]
    submittable = sorted(k.name for k in all_kinds() if k.user_creatable)
    assert _enum(schema, components["JobRequest"]["properties"]["kind"]) == submittable
    assert "model.train" not in submittable  # made by the models API, not submitted
    assert components["Job"]["properties"]["kind"]["type"] == "string"  # any kind, old ones too
    assert "enum" not in components["Job"]["properties"]["kind"]


def test_dataset_types_are_enumerated_plugins_included(client):
    schema = _schema(client)
    create = schema["components"]["schemas"]["DatasetCreateRequest"]["properties"]
    types = _enum(schema, create["type"])
    assert {"image-classification", "test-squares"} <= set(types)  # a plugin's type is there


def test_each_dataset_types_options_have_a_json_schema(client, django_user_model):
    """The schema's ``options`` is any of the installed types' option schemas, the same as
    ``GET dataset-types/`` gives per type; a client validates options before sending."""
    import jsonschema

    schema = _schema(client)
    options = schema["components"]["schemas"]["DatasetCreateRequest"]["properties"]["options"]
    titles = {s["title"] for s in options["anyOf"]}
    assert {"image-classification options", "test-squares options"} <= titles

    client.force_login(django_user_model.objects.create_user("reader"))
    types = {t["id"]: t for t in client.get("/api/v1/dataset-types/").json()}
    squares = types["test-squares"]["options_schema"]
    assert squares["properties"]["size"] == {
        "type": "integer", "minimum": 4, "maximum": 256, "default": 16,
    }  # fmt: skip
    assert squares["properties"]["encoding"]["enum"] == ["", "png", "jpg", "none"]
    jsonschema.validate({"count": 5, "size": 8, "encoding": "png"}, squares)
    for bad in ({"count": 5, "size": 2}, {"count": "five", "size": 8}, {"size": 8}):
        try:
            jsonschema.validate(bad, squares)
        except jsonschema.ValidationError:
            pass
        else:
            raise AssertionError(f"{bad} should not validate")
    archive = types["image-classification"]["options_schema"]["properties"]
    assert "archive" not in archive  # a file: a multipart part, not a JSON value
    assert archive["source"]["enum"][:2] == ["folder", "archive"]
