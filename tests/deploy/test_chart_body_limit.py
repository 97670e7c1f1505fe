"""The Ingress's own request-body limit follows the web's (config.maxUploadMB)."""

import pytest

from tests.deploy.test_chart import (
    INGRESS_TLS,
    PRODUCTION,
    RELEASE,
    find,
    merged,
    of_kind,
    render,
    render_error,
)

pytestmark = pytest.mark.deploy
BODY_SIZE = "nginx.ingress.kubernetes.io/proxy-body-size"


def limits(values: dict) -> tuple[str | None, str]:
    """(the Ingress's body-size annotation, the web's DIGITS_MAX_UPLOAD_MB)."""
    docs = render(merged(PRODUCTION, INGRESS_TLS, values))
    annotations = find(docs, "Ingress", RELEASE)["metadata"].get("annotations", {})
    return annotations.get(BODY_SIZE), of_kind(docs, "ConfigMap")[0]["data"]["DIGITS_MAX_UPLOAD_MB"]


def test_the_ingress_gets_the_web_limit_by_default() -> None:
    assert limits({}) == ("2048m", "2048")


def test_one_value_sets_both_limits() -> None:
    assert limits({"config": {"maxUploadMB": 512}}) == ("512m", "512")


def test_an_explicit_annotation_wins() -> None:
    assert limits({"ingress": {"annotations": {BODY_SIZE: "4g"}}})[0] == "4g"


def test_other_controllers_turn_the_annotation_off() -> None:
    annotation, env = limits({"ingress": {"proxyBodySizeAnnotation": ""}})
    assert (annotation, env) == (None, "2048")


def test_the_limit_is_not_set_through_extra_env() -> None:
    error = render_error(merged(PRODUCTION, {"config": {"extraEnv": {"DIGITS_MAX_UPLOAD_MB": 1}}}))
    assert "set config.maxUploadMB, not config.extraEnv.DIGITS_MAX_UPLOAD_MB" in error
