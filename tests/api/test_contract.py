"""The API answers as its OpenAPI schema says, for every operation, as two ordinary users.

schemathesis generates requests from the schema the live server publishes (``/api/schema/``)
and sends them to that server (uvicorn, as in production) with each user's API token: valid
requests and, fewer, invalid ones; before them, the requests a client writes on the happy path
(``_known_requests``), and each operation once without a token and once with a wrong one.
Every answer must be documented: no server error, a status code and a content type the
operation lists, a body that matches the listed schema. Path ids are drawn from the caller's
own objects, the other user's, an object shared with the caller's team, and anything the
schema allows; whatever the request, an object the caller may not see answers 404.

Bounded for CI: few examples per operation, no shrinking, derandomized (the same requests on
every run). Every failure is collected and reported together, each with a ``curl`` line, and
the statuses each operation answered are printed (``-s``).
"""

from __future__ import annotations

import io
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi._hypothesis import _draw_negated_locations
from schemathesis.transport.requests import ManagedCookiesSession

from apps.accounts.models import ApiToken, Membership, Team
from apps.core import permissions
from apps.core.storage import get_store
from apps.datasets import shards
from apps.datasets.models import Dataset
from apps.evaluations.models import Evaluation
from apps.jobs.models import Job, JobArtifact
from apps.mlmodels.models import TrainedModel
from tests.evaluations.helpers import finished_evaluation

pytestmark = pytest.mark.contract

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: Generated examples per operation and user, besides the written-out requests, the two
#: without a valid token and the fixed path ids (the caller's, the other user's, a shared
#: one). 12 and 5 (20 and 8 before issue #15) send ~1,860 requests, ~425 of them on objects
#: hidden from the sender (~2,950 and ~740 before), for two thirds of the CPU time.
VALID_EXAMPLES = 12
INVALID_EXAMPLES = 5
#: Operations that need no token (they answer without a 401 when sent none).
PUBLIC = {"POST /api/v1/tokens/exchange/"}
#: The resource a path's ``{id}`` (or ``{slug}``) names, by the path's first segment.
RESOURCES = {
    "datasets": "dataset", "models": "model", "jobs": "job", "tokens": "token", "teams": "team",
    "evaluations": "evaluation",
}  # fmt: skip


@dataclass
class User:
    """One ordinary user: their token, and the ids of their objects by resource."""

    name: str
    user: object
    token_id: int
    key: str
    own: dict[str, list] = field(default_factory=dict)
    #: Private objects only the other user names (the owner's own requests leave them be).
    secret: dict[str, object] = field(default_factory=dict)
    shared_with_me: dict[str, list] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.key}"}


def _built_dataset(owner, name: str, **sharing) -> Dataset:
    """A ready classification dataset of 6 squares (train 4, val 2), its shards in the store."""
    job = Job.objects.create(
        owner=owner, name=f"Build {name}", kind="dataset.build", status="done", **sharing
    )
    prefix = f"jobs/{job.pk}/"
    store = get_store()
    stages = {}
    for stage, count in [("train", 4), ("val", 2), ("test", 0)]:
        writer = shards.StageWriter(store, prefix, stage, 4, None)
        for i in range(count):
            image = np.zeros((8, 8, 1), np.uint8)
            image[: i + 1, : i + 1] = 255
            writer.add(image, i % 2)
        writer.flush()
        stages[stage] = {
            **writer.summary(),
            "class_counts": {"0": count - count // 2, "1": count // 2},
        }
    manifest = {
        "format": shards.NPY_FORMAT, "encoding": None, "type": "test-squares",
        "feature": {"shape": [8, 8, 1], "dtype": "uint8", "layout": "HWC"},
        "label": {"kind": "class"}, "label_names": ["even", "odd"], "shard_size": 4,
        "stages": stages, "error_count": 0, "errors": [],
    }  # fmt: skip
    store.put(prefix + "manifest.json", b"{}", content_type="application/json")
    store.put(prefix + "labels.txt", b"even\nodd\n", content_type="text/plain")
    store.put(prefix + "errors.json", b"[]", content_type="application/json")
    return Dataset.objects.create(
        owner=owner, name=name, type="test-squares", status="ready", job=job, manifest=manifest,
        options={"count": 6, "size": 8}, **sharing,
    )  # fmt: skip


def _trained_model(owner, dataset: Dataset, name: str) -> TrainedModel:
    """A model that finished training (without running it): no snapshot, so classify and
    download answer at once."""
    job = Job.objects.create(
        owner=owner, name=f"Train {name}", kind="model.train", queue="gpu", status="done",
        params={"model_id": None, "dataset_id": dataset.pk},
    )  # fmt: skip
    model = TrainedModel.objects.create(
        owner=owner, name=name, dataset=dataset, status="ready", job=job,
        network={"source": "standard", "name": "lenet"},
        solver={"epochs": 1, "batch_size": 2, "base_lr": 0.01},
    )  # fmt: skip
    job.params = {**job.params, "model_id": model.pk}
    job.save(update_fields=["params"])
    return model


def _evaluation(owner, model: TrainedModel) -> Evaluation:
    """A finished evaluation of the model's val stage (2 entries), its predictions stored."""
    probs = np.array([[0.9, 0.1], [0.6, 0.4]], np.float32)
    return finished_evaluation(owner, model, np.array([0, 1]), probs, dataset=model.dataset)


def _job_with_artifact(owner, name: str) -> Job:
    job = Job.objects.create(owner=owner, name=name, kind="worker.check", status="done")
    key = f"jobs/{job.pk}/report.txt"
    get_store().put(key, b"checked\n")
    JobArtifact.objects.create(job=job, name="report.txt", key=key, size=8)
    return job


def _user(django_user_model, name: str) -> User:
    user = django_user_model.objects.create_user(name, password="pw-" + name)
    token, key = ApiToken.issue(user, "contract tests")
    dataset = _built_dataset(user, f"{name}'s squares")
    model = _trained_model(user, dataset, f"{name}'s model")
    job = _job_with_artifact(user, f"{name}'s check")
    spare, _ = ApiToken.issue(user, "spare")
    secret_dataset = _built_dataset(user, f"{name}'s secret squares")
    secret_model = _trained_model(user, secret_dataset, f"{name}'s secret model")
    evaluation = _evaluation(user, model)
    secret_evaluation = _evaluation(user, secret_model)
    secret_team = Team.objects.create(name=f"{name}'s", slug=f"{name}s")
    Membership.objects.create(team=secret_team, user=user, role="admin")
    return User(
        name=name, user=user, token_id=token.pk, key=key,
        own={"dataset": [dataset.pk], "model": [model.pk], "job": [job.pk, model.job_id],
             "token": [spare.pk], "team": [], "evaluation": [evaluation.pk]},
        secret={"dataset": secret_dataset.pk, "model": secret_model.pk,
                "job": _job_with_artifact(user, f"{name}'s secret check").pk,
                "token": ApiToken.issue(user, "secret")[0].pk, "team": secret_team.slug,
                "evaluation": secret_evaluation.pk},
    )  # fmt: skip


@pytest.fixture
def users(transactional_db, django_user_model):
    """Alice and Bob, each with a dataset, a model, jobs, a spare token and secrets; Alice
    shares a dataset with her team, where Bob is a viewer."""
    alice, bob = _user(django_user_model, "alice"), _user(django_user_model, "bob")
    team = Team.objects.create(name="Vision", slug="vision")
    Membership.objects.create(team=team, user=alice.user, role="admin")
    Membership.objects.create(team=team, user=bob.user, role="viewer")
    shared = _built_dataset(alice.user, "team squares", team=team, visibility="team")
    alice.own["dataset"].append(shared.pk)
    alice.own["team"].append("vision")
    bob.shared_with_me = {"dataset": [shared.pk], "team": ["vision"]}
    return alice, bob


def _resource(path: str) -> str | None:
    parts = path.strip("/").split("/")  # api, v1, <collection>, {id}, ...
    if len(parts) > 3 and parts[3] in ("{id}", "{slug}"):
        return RESOURCES.get(parts[2])
    return None


def _hidden_from(caller: User, path: str, path_parameters: dict | None) -> bool:
    """Whether the path names an object that exists and ``caller`` may not see, now: sharing
    changes while the test runs (generated PATCH requests share and unshare)."""
    resource = _resource(path)
    value = (path_parameters or {}).get("slug" if resource == "team" else "id")
    if resource is None or not isinstance(value, int | str):
        return False
    if resource == "team":
        team = Team.objects.filter(slug=value).first()
        return team is not None and not team.memberships.filter(user=caller.user).exists()
    if resource == "token":
        token = ApiToken.objects.filter(pk=value).first() if str(value).isdigit() else None
        return token is not None and token.user_id != caller.user.pk
    model = {"dataset": Dataset, "model": TrainedModel, "job": Job, "evaluation": Evaluation}
    if not str(value).isdigit() or int(value) > 2**31:
        return False
    objects = model[resource].objects.filter(pk=int(value))
    if resource == "evaluation":  # visible only with its model
        return objects.exists() and not objects.visible_to(caller.user).exists()
    return objects.exists() and not permissions.visible(objects, caller.user).exists()


def _path_choices(operation, caller: User, other: User) -> list[dict]:
    """Fixed path parameters to try besides generated ones: the caller's objects, the other
    user's (private) ones and those shared with the caller, with names that exist."""
    resource = _resource(operation.path)
    if resource is None:
        return []
    key = "slug" if resource == "team" else "id"
    ids = [
        *caller.own.get(resource, []),
        *other.own.get(resource, [])[:1],
        other.secret[resource],
        *caller.shared_with_me.get(resource, []),
    ]
    extra = {}
    if "{stage}" in operation.path:
        extra = {"stage": "train", "index": 1}
    elif operation.path.startswith("/api/v1/datasets/{id}/files/"):
        extra = {"name": "labels.txt"}
    elif operation.path.startswith("/api/v1/jobs/{id}/artifacts/"):
        extra = {"name": "report.txt"}
    return [{key: value, **extra} for value in ids]


class _Negatable(Exception):
    pass


def _negatable(operation, path_parameters: dict | None) -> bool:
    """Whether schemathesis finds anything to make invalid in the operation's requests when
    the path parameters are ``path_parameters`` (None: generated). When it finds nothing
    (no parameters, no body; or only path parameters, given here), each negative draw is
    rejected: hundreds of discarded draws per run before hypothesis gives up, and not one
    request. Asked of schemathesis' own choice of locations to negate, which draws only
    once it has some."""

    def draw(strategy):
        raise _Negatable

    explicit = {
        ParameterLocation.PATH: path_parameters, ParameterLocation.HEADER: None,
        ParameterLocation.COOKIE: None, ParameterLocation.QUERY: None,
    }  # fmt: skip
    try:
        _draw_negated_locations(
            draw, operation, GenerationMode.NEGATIVE, explicit=explicit, body_is_generated=True
        )
    except _Negatable:
        return True
    return False


def _ordered(operations):
    # Deletions last, so that the other operations find the objects they are given.
    return sorted(operations, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def _png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(out, format="PNG")
    return out.getvalue()


def _known_requests(caller: User, other: User) -> dict[str, list[dict]]:
    """Requests written out (``Case`` arguments) by operation: what a client does on the
    happy path, which generated ones rarely hit, and the server errors found before."""
    dataset, model = caller.own["dataset"][0], caller.own["model"][0]
    job = caller.own["job"][0]
    evaluation, other_evaluation = caller.own["evaluation"][0], other.secret["evaluation"]
    solver = {"epochs": 1, "batch_size": [2, 4], "base_lr": 0.01}
    network = {"source": "standard", "name": "lenet"}
    return {
        "POST /api/v1/datasets/": [
            {"body": {"type": "test-squares", "name": "more", "options": {"count": 4, "size": 8}}},
            {"body": {"type": "test-squares", "name": "up", "options": '{"count": 4, "size": 8}'},
             "media_type": "multipart/form-data"},
        ],
        "PATCH /api/v1/datasets/{id}/": [
            {"path_parameters": {"id": dataset}, "body": {"description": "contract"}},
        ],
        "GET /api/v1/datasets/{id}/entries/": [
            {"path_parameters": {"id": dataset}, "query": {"stage": "val", "label": 1}},
        ],
        "GET /api/v1/datasets/{id}/files/{name}/": [
            {"path_parameters": {"id": dataset, "name": name}}
            for name in ("manifest.json", "labels.txt", "mean.png")
        ],
        "POST /api/v1/models/": [
            {"body": {"dataset": dataset, "name": "sweep", "network": network, "solver": solver}},
            {"body": {"dataset": other.own["dataset"][0], "name": "theirs", "network": network,
                      "solver": solver}},
            # Server errors found before: solver as a string or a list.
            {"body": {"dataset": dataset, "name": "x", "network": network, "solver": "fast"}},
            {"body": {"dataset": dataset, "name": "x", "network": network, "solver": [1]}},
        ],
        "POST /api/v1/models/{id}/classify/": [
            {"path_parameters": {"id": model}, "body": {"image": _png()},
             "media_type": "multipart/form-data"},
            {"path_parameters": {"id": model}, "body": {"stage": "train", "index": 0}},
        ],
        "POST /api/v1/models/{id}/resume/": [{"path_parameters": {"id": model}}],
        "GET /api/v1/models/{id}/download/": [{"path_parameters": {"id": model}}],
        "POST /api/v1/evaluations/": [
            {"body": {"model": model, "source": "stage", "stage": "val"}},
            {"body": {"model": model, "source": "archive", "archive": b"PK\x05\x06" + bytes(18)},
             "media_type": "multipart/form-data"},
        ],
        "GET /api/v1/evaluations/{id}/entries/": [
            {"path_parameters": {"id": evaluation}, "query": {"true": 1, "predicted": 0}},
            {"path_parameters": {"id": evaluation}, "query": {"correct": "false"}},
        ],
        "GET /api/v1/evaluations/{id}/versus/": [
            {"path_parameters": {"id": evaluation}, "query": {"other": evaluation}},
            {"path_parameters": {"id": evaluation}, "query": {"other": other_evaluation}},
        ],
        "POST /api/v1/jobs/": [{"body": {"kind": "worker.check", "params": {"steps": 1}}}],
        "GET /api/v1/jobs/": [
            # A server error found before: an offset PostgreSQL does not take.
            {"query": {"created_after": "0521-12-19T19:43:12+21:58"}},
            {"query": {"created_before": "0001-01-01T00:00:00+01:00"}},
        ],
        "GET /api/v1/jobs/{id}/events/": [{"path_parameters": {"id": job}}],
        "POST /api/v1/jobs/{id}/abort/": [{"path_parameters": {"id": job}}],
        "POST /api/v1/jobs/{id}/clone/": [{"path_parameters": {"id": job}}],
        "POST /api/v1/tokens/": [{"body": {"name": "contract"}}],
        "POST /api/v1/tokens/exchange/": [
            {"body": {"username": caller.name, "password": "pw-" + caller.name}},
            {"body": {"username": caller.name, "password": "pw-" + caller.name,
                      "scope": "read", "expires_in_days": 1}},
        ],
    }  # fmt: skip


@dataclass
class Finding:
    operation: str
    user: str
    problem: str
    curl: str


def _session() -> ManagedCookiesSession:
    """One HTTP session for every request: its connection to the server is kept alive (a
    fresh session per request opens a connection each time). schemathesis drops the cookies
    an answer sets before the next request; no default headers are added (as without one)."""
    session = ManagedCookiesSession()
    session.headers.clear()
    return session


@dataclass
class Contract:
    """Sends cases to the live server as a user and records what breaks the contract."""

    base_url: str
    findings: list[Finding] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    seen: set = field(default_factory=set)
    hidden: int = 0  # requests on objects hidden from their sender
    session: ManagedCookiesSession = field(default_factory=_session)

    def send(self, case, caller: User | None, headers: dict[str, str]):
        operation = case.operation
        hidden = caller is not None and _hidden_from(caller, operation.path, case.path_parameters)
        response = case.call(base_url=self.base_url, session=self.session, headers=headers)
        self.statuses[operation.label, response.status_code] += 1
        problems = []
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            problems += [f"{type(f).__name__}: {f.title}\n{f.message}" for f in group.exceptions]
        except AssertionError as exc:
            problems.append(f"{type(exc).__name__}: {exc}")
        if caller is None and response.status_code != 401 and operation.label not in PUBLIC:
            problems.append(f"Answered {response.status_code} without a valid token")
        self.hidden += hidden
        if hidden and response.status_code != 404:
            problems.append(
                f"Answered {response.status_code} for an object hidden from {caller.name} "
                f"(expected 404): {response.content[:300]!r}"
            )
        who = caller.name if caller else "nobody"
        for problem in problems:
            headline = (operation.label, who, response.status_code, problem.split("\n", 1)[0])
            if headline not in self.seen:
                self.seen.add(headline)
                curl = case.as_curl_command(headers=headers)
                self.findings.append(Finding(operation.label, who, problem, curl))

    def generated(self, operation, mode, examples: int, caller: User, other: User):
        """Send ``examples`` generated requests; path ids from ``_path_choices`` or any."""
        # None: path parameters generated like the rest.
        choices = [None, *_path_choices(operation, caller, other)]
        if mode is GenerationMode.NEGATIVE:
            # Only the choices that leave something to make invalid: the others' draws are
            # all discarded (see _negatable), which changes nothing in what is sent.
            choices = [p for p in choices if _negatable(operation, p)]
            if not choices:
                return  # Invalid requests of an operation with nothing to make invalid.
        strategy = st.one_of(
            [operation.as_strategy(generation_mode=mode, path_parameters=p) for p in choices]
        )
        resource = _resource(operation.path)

        def keeps_own_token(case):
            # Never revoke the token this run authenticates with.
            return not (resource == "token" and case.path_parameters.get("id") == caller.token_id)

        @settings(
            max_examples=examples, deadline=None, derandomize=True, database=None,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=strategy.filter(keeps_own_token))
        def run(case):
            self.send(case, caller, caller.headers)

        try:
            run()
        except Unsatisfiable:
            # Invalid requests of an operation with nothing to make invalid (no parameters).
            assert mode is GenerationMode.NEGATIVE, operation.label

    def report(self) -> str:
        return "\n\n".join(
            f"{f.operation} as {f.user}: {f.problem}\n  {f.curl}" for f in self.findings
        )

    def summary(self) -> str:
        by_operation: dict[str, list[str]] = {}
        for (label, status), count in sorted(self.statuses.items()):
            by_operation.setdefault(label, []).append(f"{status}×{count}")
        return "\n".join(f"  {label}: {' '.join(codes)}" for label, codes in by_operation.items())


# About 50 operations × 2 users: minutes on two busy cores (CI runs a second test
# process beside it).
@pytest.mark.timeout(900)
def test_every_operation_answers_as_documented(users, live_server_url):
    alice, bob = users
    schema = schemathesis.openapi.from_url(f"{live_server_url}/api/schema/?format=json")
    operations = _ordered([result.ok() for result in schema.get_all_operations()])
    assert len(operations) >= 36
    contract = Contract(live_server_url)
    known = {alice.name: _known_requests(alice, bob), bob.name: _known_requests(bob, alice)}
    started = time.monotonic()
    for operation in operations:
        paths = _path_choices(operation, alice, bob)
        anonymous = operation.Case(path_parameters=paths[0] if paths else {})
        contract.send(anonymous, None, {})
        contract.send(anonymous, None, {"Authorization": "Token not-a-token"})
        for caller, other in [(alice, bob), (bob, alice)]:
            for arguments in known[caller.name].get(operation.label, []):
                arguments.setdefault(
                    "media_type", "application/json" if "body" in arguments else None
                )
                contract.send(operation.Case(**arguments), caller, caller.headers)
            contract.generated(operation, GenerationMode.POSITIVE, VALID_EXAMPLES, caller, other)
            contract.generated(operation, GenerationMode.NEGATIVE, INVALID_EXAMPLES, caller, other)
    elapsed = time.monotonic() - started
    total = sum(contract.statuses.values())
    print(
        f"\n{total} requests ({contract.hidden} on objects hidden from the sender), "
        f"{len(operations)} operations, {elapsed:.0f} s; statuses:"
    )
    print(contract.summary())
    assert contract.hidden > 300, "too few requests tried other users' private objects"
    assert not contract.findings, (
        f"{len(contract.findings)} contract violations:\n\n{contract.report()}"
    )
