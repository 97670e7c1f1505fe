"""The Helm chart renders, lints and validates for every documented combination.

Rendering uses Helm's own engine (helm-python-sdk, no binary, no cluster) and
every manifest is checked against the Kubernetes OpenAPI schemas of the oldest
supported and the newest known Kubernetes version.
"""

import base64
import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.deploy

# kubernetes-validate reads and parses the kind's schema and the version's definitions
# (megabytes of JSON) for every document it checks; they are the same files each time.
kubernetes_validate.utils.schema_contents = functools.cache(
    kubernetes_validate.utils.schema_contents
)

CHART = Path(__file__).resolve().parents[2] / "helm" / "digits"
RELEASE = "digits"
NAMESPACE = "ml"
# Chart.yaml's kubeVersion floor, and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

DB_PASSWORD = "db-Passw0rd-sentinel"
S3_SECRET = "s3-secret-sentinel-value"
SECRET_KEY = "django-secret-key-sentinel-value"
REDIS_PASSWORD = "redis-password-sentinel"

PRODUCTION = {
    "evaluation": {"enabled": False},
    "secretKey": {"value": SECRET_KEY},
    "database": {"url": f"postgres://digits:{DB_PASSWORD}@db.internal:5432/digits"},
    "broker": {"url": f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0"},
    "channelLayer": {"url": f"redis://:{REDIS_PASSWORD}@redis.internal:6379/1"},
    "objectStore": {
        "endpoint": "s3.internal:9000",
        "bucket": "digits-prod",
        "region": "eu-west-1",
        "accessKey": "digits-access",
        "secretKey": S3_SECRET,
    },
}

EXISTING_SECRETS = {
    "evaluation": {"enabled": False},
    "secretKey": {"existingSecret": "digits-app"},
    "database": {"existingSecret": "digits-db", "existingSecretKey": "uri"},
    "broker": {"existingSecret": "digits-redis"},
    "channelLayer": {"existingSecret": "digits-redis"},
    "objectStore": {"endpoint": "s3.amazonaws.com", "existingSecret": "digits-s3"},
}

GPU_POOLS = {
    "workers": {
        "queues": {
            "gpu": {
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
                "runtimeClassName": "nvidia",
            },
            "gpu-a100": {
                "enabled": True,
                "queue": "gpu",
                "replicas": 2,
                "threads": 2,
                "gpus": 2,
                "terminationGracePeriodSeconds": 900,
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
                "tolerations": [{"key": "dedicated", "value": "a100", "effect": "NoSchedule"}],
                "priorityClassName": "training",
            },
        }
    }
}

INGRESS_TLS = {
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
        "hosts": [{"host": "digits.example.org", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "digits-tls", "hosts": ["digits.example.org"]}],
    }
}

HPA = {
    "web": {
        "autoscaling": {
            "enabled": True,
            "minReplicas": 3,
            "maxReplicas": 12,
            "targetMemoryUtilizationPercentage": 80,
        }
    }
}

MINIMAL = {
    "evaluation": {
        "postgresql": {"persistence": {"enabled": False}},
        "minio": {"persistence": {"enabled": False}},
    },
    "networkPolicy": {"enabled": False},
    "migrations": {"enabled": False},
    "reaper": {"enabled": False},
    "serviceAccount": {"create": False},
    "web": {"podDisruptionBudget": {"enabled": False}},
    "workers": {"queues": {"gpu": {"gpus": 0}}},
}


def merged(*parts: dict) -> dict:
    result: dict = {}
    for part in parts:
        result = _deep_merge(result, part)
    return result


def _deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


SCENARIOS = {
    "default": {},
    "production": PRODUCTION,
    "existing-secrets": EXISTING_SECRETS,
    "gpu-pools": merged(PRODUCTION, GPU_POOLS),
    "ingress-tls": merged(PRODUCTION, INGRESS_TLS),
    "hpa": merged(PRODUCTION, HPA),
    "evaluation-all-options": merged(INGRESS_TLS, HPA, GPU_POOLS),
    "minimal": MINIMAL,
}


@functools.cache
def _render(values_json: str) -> tuple[dict, ...]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(json.loads(values_json), name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def render(values: dict | None = None) -> list[dict]:
    """Rendered manifests as dicts (copies: tests may not poison the cache)."""
    return copy.deepcopy(list(_render(json.dumps(values or {}, sort_keys=True))))


def render_error(values: dict) -> str:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError) as excinfo:
        chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return str(excinfo.value)


def find(docs: list[dict], kind: str, name: str) -> dict:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict]) -> Iterator[tuple[str, dict]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def worker(docs: list[dict], pool: str) -> dict:
    return find(docs, "Deployment", f"{RELEASE}-worker-{pool}")


# --- Validity -----------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_match_kubernetes_schemas(scenario: str, kube_version: str) -> None:
    docs = render(SCENARIOS[scenario])
    assert docs
    for doc in docs:
        # strict: unknown fields (typos) fail too.
        kubernetes_validate.validate(doc, kube_version, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_is_clean(scenario: str) -> None:
    report = helm.lint(
        CHART,
        SCENARIOS[scenario],
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{KUBE_VERSIONS[0]}",
    )
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; 1 ("icon is recommended") is advice.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_schema_rejects_invalid_values() -> None:
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.render({"workers": {"queues": {"gpu": {"gpus": -1}}}}, name=RELEASE)
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.render({"web": {"replica": 3}}, name=RELEASE)


# --- Production settings ------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("database", "needs database.url or database.existingSecret"),
        ("broker", "needs broker.url or broker.existingSecret"),
        ("channelLayer", "needs channelLayer.url or channelLayer.existingSecret"),
        ("secretKey", "needs secretKey.value or secretKey.existingSecret"),
    ],
)
def test_production_without_required_setting_fails_clearly(missing: str, message: str) -> None:
    values = copy.deepcopy(PRODUCTION)
    del values[missing]
    error = render_error(values)
    assert "evaluation.enabled=false" in error
    assert message in error


def test_production_without_object_store_fails_clearly() -> None:
    values = copy.deepcopy(PRODUCTION)
    values["objectStore"] = {"endpoint": "s3.internal:9000"}
    assert "needs objectStore.existingSecret or both" in render_error(values)
    values["objectStore"] = {"accessKey": "a", "secretKey": "b"}
    assert "needs objectStore.endpoint" in render_error(values)


def test_evaluation_mode_refuses_external_services() -> None:
    error = render_error({"database": {"url": "postgres://u:p@db:5432/d"}})
    assert "set evaluation.enabled=false" in error


def test_extra_env_cannot_carry_secrets() -> None:
    error = render_error(merged(PRODUCTION, {"config": {"extraEnv": {"DATABASE_URL": "x"}}}))
    assert "config.extraEnv.DATABASE_URL would put a secret into the ConfigMap" in error


# --- Secrets ------------------------------------------------------------------


def _secret_values(docs: list[dict]) -> set[str]:
    values = set()
    for secret in of_kind(docs, "Secret"):
        for encoded in secret.get("data", {}).values():
            values.add(base64.b64decode(encoded).decode())
    return values


@pytest.mark.parametrize("scenario", ["production", "default", "evaluation-all-options"])
def test_secret_values_appear_only_in_secrets(scenario: str) -> None:
    docs = render(SCENARIOS[scenario])
    secrets = _secret_values(docs)
    if scenario == "production":
        assert {SECRET_KEY, S3_SECRET, PRODUCTION["database"]["url"]} <= secrets
    sensitive = {s for s in secrets if len(s) >= 8} | {DB_PASSWORD, S3_SECRET, SECRET_KEY}
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for value in sensitive:
            assert value not in text, f"{doc['kind']}/{doc['metadata']['name']} leaks a secret"


def test_configmap_carries_only_non_secret_settings() -> None:
    (configmap,) = of_kind(render(PRODUCTION), "ConfigMap")
    data = configmap["data"]
    assert data["DIGITS_S3_ENDPOINT"] == "s3.internal:9000"
    assert data["DIGITS_S3_BUCKET"] == "digits-prod"
    assert data["DIGITS_S3_SECURE"] == "true"
    assert data["DIGITS_S3_REGION"] == "eu-west-1"
    assert data["DIGITS_DEBUG"] == "false"
    for name in ("DIGITS_JOB_STALE_SECONDS", "DIGITS_JOB_MAX_ATTEMPTS", "DIGITS_REAPER_INTERVAL"):
        assert data[name].isdigit()
    for name in data:
        assert not any(word in name for word in ("SECRET", "PASSWORD", "DATABASE_URL", "BROKER"))


def test_pods_read_secrets_from_files() -> None:
    docs = render(PRODUCTION)
    web = find(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    env = env_of(web["containers"][0])
    for name in (
        "DIGITS_SECRET_KEY",
        "DATABASE_URL",
        "DIGITS_BROKER_URL",
        "DIGITS_CHANNEL_LAYER_URL",
        "DIGITS_S3_ACCESS_KEY",
        "DIGITS_S3_SECRET_KEY",
    ):
        assert env[f"{name}_FILE"] == f"/etc/digits/secrets/{name}"
        assert name not in env


def test_existing_secrets_are_referenced_not_copied() -> None:
    docs = render(EXISTING_SECRETS)
    assert of_kind(docs, "Secret") == []
    web = find(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    (volume,) = [v for v in web["volumes"] if v["name"] == "secrets"]
    items = {
        item["path"]: (source["secret"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    assert items == {
        "DIGITS_SECRET_KEY": ("digits-app", "secret-key"),
        "DATABASE_URL": ("digits-db", "uri"),
        "DIGITS_BROKER_URL": ("digits-redis", "broker-url"),
        "DIGITS_CHANNEL_LAYER_URL": ("digits-redis", "channel-layer-url"),
        "DIGITS_S3_ACCESS_KEY": ("digits-s3", "access-key"),
        "DIGITS_S3_SECRET_KEY": ("digits-s3", "secret-key"),
    }


def test_evaluation_mode_wires_bundled_services() -> None:
    docs = render()
    (secret,) = [s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == RELEASE]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    password = data["POSTGRES_PASSWORD"]
    assert data["DATABASE_URL"] == f"postgres://digits:{password}@{RELEASE}-postgresql:5432/digits"
    assert data["DIGITS_BROKER_URL"].endswith(f"@{RELEASE}-redis:6379/0")
    assert data["DIGITS_CHANNEL_LAYER_URL"].endswith(f"@{RELEASE}-redis:6379/1")
    (configmap,) = of_kind(docs, "ConfigMap")
    assert configmap["data"]["DIGITS_S3_ENDPOINT"] == f"{RELEASE}-minio:9000"
    assert configmap["data"]["DIGITS_S3_SECURE"] == "false"
    images = {c["image"] for _, spec in pod_specs(docs) for c in containers(spec)}
    assert {"postgres:16", "redis:7"} <= images
    assert any(image.startswith("minio/minio:") for image in images)
    find(docs, "StatefulSet", f"{RELEASE}-postgresql")
    find(docs, "StatefulSet", f"{RELEASE}-minio")
    find(docs, "Deployment", f"{RELEASE}-redis")


def test_production_mode_brings_no_services() -> None:
    docs = render(PRODUCTION)
    assert of_kind(docs, "StatefulSet") == []
    names = {d["metadata"]["name"] for d in docs}
    assert not any(n.endswith(("-postgresql", "-redis", "-minio")) for n in names)


def test_secret_checksum_is_deterministic() -> None:
    def checksum(values: dict) -> str:
        with helm.Chart.load(CHART) as chart:
            text = chart.render(values, name=RELEASE)["digits/templates/web-deployment.yaml"]
        return yaml.safe_load(text)["spec"]["template"]["metadata"]["annotations"][
            "checksum/secret"
        ]

    assert checksum({}) == checksum({})
    assert checksum(PRODUCTION) != checksum(merged(PRODUCTION, {"secretKey": {"value": "other"}}))


# --- Migrations ---------------------------------------------------------------


def test_migration_job_is_a_pre_install_pre_upgrade_hook() -> None:
    docs = render(PRODUCTION)
    job = find(docs, "Job", f"{RELEASE}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["python", "manage.py", "migrate", "--noinput"]
    # The hook must not depend on resources that only exist after install.
    assert "envFrom" not in container
    assert env_of(container)["DIGITS_S3_ENDPOINT"] == "s3.internal:9000"

    # Its Secret exists before it, in the same hook phases.
    hook_secret = find(docs, "Secret", f"{RELEASE}-migrate")
    secret_annotations = hook_secret["metadata"]["annotations"]
    assert secret_annotations["helm.sh/hook"] == annotations["helm.sh/hook"]
    assert int(secret_annotations["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    assert "POSTGRES_PASSWORD" not in hook_secret["data"]


def test_evaluation_migrations_run_after_the_bundled_database_exists() -> None:
    job = find(render(), "Job", f"{RELEASE}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_app_pods_wait_for_migrations() -> None:
    docs = render(PRODUCTION)
    for deployment in of_kind(docs, "Deployment"):
        init = deployment["spec"]["template"]["spec"]["initContainers"]
        assert [c["name"] for c in init] == ["wait-for-migrations"]
        assert "migrate --check" in init[0]["args"][-1]


# --- Pod security -------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_all_pods_run_non_root_with_read_only_root(scenario: str) -> None:
    for name, spec in pod_specs(render(SCENARIOS[scenario])):
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, name
        assert pod_ctx["runAsUser"] != 0, name
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for container in containers(spec):
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert ctx["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert ctx["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            assert ctx.get("runAsUser", pod_ctx["runAsUser"]) != 0, (name, container["name"])


def test_app_pods_have_writable_scratch_dirs() -> None:
    docs = render(PRODUCTION)
    for name, spec in pod_specs(docs):
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["data"] and "emptyDir" in volumes["tmp"], name
        for container in containers(spec):
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/var/lib/digits", "/tmp"} <= mounts, name
            env = env_of(container)
            assert env["DIGITS_DATA_DIR"] == "/var/lib/digits"
            assert env["TMPDIR"] == "/tmp"


# --- Web ----------------------------------------------------------------------


def test_web_probes_use_health_endpoints() -> None:
    web = find(render(), "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    (container,) = web["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz/live"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert container["args"] == [
        "uvicorn",
        "digits_site.asgi:application",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--proxy-headers",
    ]
    # Probes carry a Host that ALLOWED_HOSTS accepts.
    (configmap,) = of_kind(render(), "ConfigMap")
    assert "localhost" in configmap["data"]["DIGITS_ALLOWED_HOSTS"].split(",")


def test_web_has_disruption_budget_and_service() -> None:
    docs = render()
    pdb = find(docs, "PodDisruptionBudget", f"{RELEASE}-web")
    labels = find(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = find(docs, "Service", f"{RELEASE}-web")
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_ingress_with_tls_turns_on_https_settings() -> None:
    docs = render(SCENARIOS["ingress-tls"])
    ingress = find(docs, "Ingress", RELEASE)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "digits-tls", "hosts": ["digits.example.org"]}]
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
        == "3600"
    )
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-web", "port": {"name": "http"}}
    data = of_kind(docs, "ConfigMap")[0]["data"]
    assert data["DIGITS_HTTPS"] == "true"
    assert "digits.example.org" in data["DIGITS_ALLOWED_HOSTS"].split(",")
    assert data["DIGITS_CSRF_TRUSTED_ORIGINS"] == "https://digits.example.org"


def test_no_ingress_by_default() -> None:
    docs = render()
    assert of_kind(docs, "Ingress") == []
    assert of_kind(docs, "ConfigMap")[0]["data"]["DIGITS_HTTPS"] == "false"


def test_hpa_takes_over_web_replicas() -> None:
    docs = render(SCENARIOS["hpa"])
    hpa = find(docs, "HorizontalPodAutoscaler", f"{RELEASE}-web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": f"{RELEASE}-web",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    assert "replicas" not in find(docs, "Deployment", f"{RELEASE}-web")["spec"]
    assert of_kind(render(), "HorizontalPodAutoscaler") == []


def test_network_policy_limits_ingress() -> None:
    policies = {p["metadata"]["name"]: p for p in of_kind(render(), "NetworkPolicy")}
    assert set(policies) == {
        f"{RELEASE}-web",
        f"{RELEASE}-inference",
        f"{RELEASE}-no-ingress",
        f"{RELEASE}-postgresql",
        f"{RELEASE}-redis",
        f"{RELEASE}-minio",
    }
    assert "ingress" not in policies[f"{RELEASE}-no-ingress"]["spec"]


# --- Workers and reaper -------------------------------------------------------


def test_gpu_worker_requests_gpus_and_default_worker_does_not() -> None:
    docs = render()
    gpu = worker(docs, "gpu")["spec"]["template"]["spec"]
    (container,) = gpu["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith("-gpu")
    assert container["args"] == [
        "python",
        "manage.py",
        "jobworker",
        "--queues",
        "gpu",
        "--threads",
        "1",
    ]
    assert gpu["terminationGracePeriodSeconds"] == 600
    # Jobs get most of the grace period to checkpoint.
    assert env_of(container)["DIGITS_JOB_KILL_GRACE_SECONDS"] == "570"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu[
        "tolerations"
    ]
    # A surge pod would wait forever for the GPU the old pod holds.
    assert worker(docs, "gpu")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0

    default = worker(docs, "default")["spec"]["template"]["spec"]
    resources = default["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in resources.get("limits", {})
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert default["terminationGracePeriodSeconds"] == 120
    assert env_of(default["containers"][0])["DIGITS_JOB_KILL_GRACE_SECONDS"] == "90"
    assert not default["containers"][0]["image"].endswith("-gpu")
    assert "strategy" not in worker(docs, "default")["spec"]


def test_worker_and_reaper_liveness_probes_read_their_beats(settings, tmp_path) -> None:
    """The exec probes run ``manage.py alive <role>``: ok after a recent beat, failing once
    the beat is older than the chart's max age (a hung loop), with no database needed."""
    import os

    from django.core.management import CommandError, call_command

    from apps.jobs import liveness

    settings.DIGITS_LIVENESS_DIR = str(tmp_path)
    docs = render()
    reaper = find(docs, "Deployment", f"{RELEASE}-reaper")["spec"]["template"]["spec"]
    probes = {
        "worker": worker(docs, "default")["spec"]["template"]["spec"]["containers"][0],
        "reaper": reaper["containers"][0],
    }
    for role, container in probes.items():
        command = container["livenessProbe"]["exec"]["command"]
        assert command[:4] == ["python", "manage.py", "alive", role], role
        args = command[2:]
        with pytest.raises(CommandError, match="no beat yet"):
            call_command(*args)
        liveness._file(role).parent.mkdir(parents=True, exist_ok=True)
        liveness._file(role).touch()
        call_command(*args)
        max_age = float(args[args.index("--max-age") + 1])
        old = liveness._file(role).stat().st_mtime - max_age - 5
        os.utime(liveness._file(role), (old, old))
        with pytest.raises(CommandError, match="last beat"):
            call_command(*args)
    (configmap,) = of_kind(docs, "ConfigMap")
    config = configmap["data"]
    assert (config["DIGITS_JOB_HEARTBEAT_SECONDS"], config["DIGITS_JOB_STALE_SECONDS"]) == (
        "2", "10",
    )  # fmt: skip
    assert config["DIGITS_REAPER_INTERVAL"] == "2"


def test_the_database_pool_size_reaches_every_process() -> None:
    assert of_kind(render(), "ConfigMap")[0]["data"]["DIGITS_DB_POOL_MAX_SIZE"] == "10"
    # 0 turns the pool off (PgBouncer): a value of its own, not "unset, take the default".
    docs = render({"config": {"databasePoolMaxSize": 0}})
    assert of_kind(docs, "ConfigMap")[0]["data"]["DIGITS_DB_POOL_MAX_SIZE"] == "0"


def test_the_database_pool_timeout_reaches_every_process() -> None:
    assert of_kind(render(), "ConfigMap")[0]["data"]["DIGITS_DB_POOL_TIMEOUT"] == "10"
    docs = render({"config": {"databasePoolTimeout": 2.5}})
    assert of_kind(docs, "ConfigMap")[0]["data"]["DIGITS_DB_POOL_TIMEOUT"] == "2.5"
    assert "databasePoolTimeout" in render_error({"config": {"databasePoolTimeout": 0}})


def test_worker_pools_are_configurable() -> None:
    docs = render(SCENARIOS["gpu-pools"])
    gpu = worker(docs, "gpu")["spec"]["template"]["spec"]
    assert gpu["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert gpu["runtimeClassName"] == "nvidia"

    a100_deployment = worker(docs, "gpu-a100")
    assert a100_deployment["spec"]["replicas"] == 2
    a100 = a100_deployment["spec"]["template"]["spec"]
    (container,) = a100["containers"]
    assert container["args"] == [
        "python",
        "manage.py",
        "jobworker",
        "--queues",
        "gpu",
        "--threads",
        "2",
    ]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert a100["terminationGracePeriodSeconds"] == 900
    assert a100["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert a100["tolerations"] == [{"key": "dedicated", "value": "a100", "effect": "NoSchedule"}]
    assert a100["priorityClassName"] == "training"
    assert a100_deployment["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 0,
        "maxUnavailable": 1,
    }
    assert container["livenessProbe"]["exec"]["command"][:4] == [
        "python", "manage.py", "alive", "worker",
    ]  # fmt: skip
    # Pools have distinct selectors.
    selectors = [
        json.dumps(worker(docs, p)["spec"]["selector"], sort_keys=True)
        for p in ("default", "gpu", "gpu-a100")
    ]
    assert len(set(selectors)) == 3


def test_disabled_pool_renders_nothing() -> None:
    docs = render({"workers": {"queues": {"gpu": {"enabled": False}}}})
    names = {d["metadata"]["name"] for d in of_kind(docs, "Deployment")}
    assert f"{RELEASE}-worker-gpu" not in names
    assert f"{RELEASE}-worker-default" in names


def test_reaper_is_a_single_recreated_replica() -> None:
    reaper = find(render(), "Deployment", f"{RELEASE}-reaper")
    assert reaper["spec"]["replicas"] == 1
    assert reaper["spec"]["strategy"] == {"type": "Recreate"}
    assert reaper["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "python",
        "manage.py",
        "reaper",
    ]


def test_workers_run_as_non_root_without_the_secret_key() -> None:
    """Job processes run user code: their worker holds only what running jobs needs."""
    docs = render(PRODUCTION)
    for pool in ("default", "gpu"):
        spec = worker(docs, pool)["spec"]["template"]["spec"]
        (container,) = [c for c in containers(spec) if c["name"] == "worker"]
        env = env_of(container)
        assert "DIGITS_SECRET_KEY_FILE" not in env and "DIGITS_SECRET_KEY" not in env
        assert env["DATABASE_URL_FILE"] == "/etc/digits/secrets/DATABASE_URL"
        (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
        paths = {i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
        assert "DIGITS_SECRET_KEY" not in paths and "DATABASE_URL" in paths
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["automountServiceAccountToken"] is False
    web = find(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    assert env_of(web["containers"][0])["DIGITS_SECRET_KEY_FILE"]


# --- Inference ------------------------------------------------------------------


def test_inference_runs_apart_reached_by_the_web_only() -> None:
    docs = render()
    [deployment] = [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == f"{RELEASE}-inference"
    ]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"] == ["python", "manage.py", "inference", "--bind", "0.0.0.0:7070"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert env_of(container)["DIGITS_INFERENCE_MEMORY_MB"] == "1536"
    [service] = [
        s for s in of_kind(docs, "Service") if s["metadata"]["name"] == f"{RELEASE}-inference"
    ]
    assert service["spec"]["ports"][0]["port"] == 7070
    [config] = of_kind(docs, "ConfigMap")
    assert config["data"]["DIGITS_INFERENCE_URL"] == f"tcp://{RELEASE}-inference:7070"
    policies = {p["metadata"]["name"]: p for p in of_kind(docs, "NetworkPolicy")}
    [rule] = policies[f"{RELEASE}-inference"]["spec"]["ingress"]
    assert rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "web"


def test_inference_on_gpus_is_a_value() -> None:
    docs = render({"inference": {"gpus": 1, "replicas": 3}})
    [deployment] = [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == f"{RELEASE}-inference"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 3
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith("-gpu")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
