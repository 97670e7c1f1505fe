"""Settings for digits, read from the environment.

With nothing set this is the embedded default: SQLite and artifacts under
``DIGITS_DATA_DIR`` (``./var``), an in-process dramatiq broker and worker and
the in-memory channel layer. Production sets ``DATABASE_URL``,
``DIGITS_BROKER_URL``, ``DIGITS_CHANNEL_LAYER_URL`` and ``DIGITS_S3_*``. The
README has the full table.
"""

import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

from apps.core.env import envbool, envfloat, envint, envlist, envsecret, envstr
from apps.core.plugins import manager as plugin_manager

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(envstr("DIGITS_DATA_DIR", str(BASE_DIR / "var"))).resolve()
# A job process (digits_site.job_settings): no secret, no database, no service URL.
JOB_SANDBOX = envbool("DIGITS_JOB_PROCESS", False)


def _secret_key() -> str:
    if JOB_SANDBOX:
        return secrets.token_urlsafe(50)  # signs nothing anyone else checks
    key = envsecret("DIGITS_SECRET_KEY")
    if key:
        return key
    # Embedded default: a random key kept beside the SQLite file, so sessions
    # survive restarts without anyone having to invent a secret.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = envbool("DIGITS_DEBUG", False)
ALLOWED_HOSTS = envlist("DIGITS_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = envlist("DIGITS_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_dramatiq",
    "axes",  # login throttling; see "Login throttling" below
    "apps.core",
    "apps.accounts",
    "apps.jobs",
    "apps.cluster",
    "apps.datasets",
    "apps.mlmodels",
    "apps.inference",
    "apps.evaluations",
    "apps.usage",
]

# --- Plugins ------------------------------------------------------------------
# Installed packages with a `digits.plugins` entry point; each may add a Django app.
DIGITS_DISABLED_PLUGINS = envlist("DIGITS_DISABLED_PLUGINS")
PLUGINS = plugin_manager.load(
    disabled=DIGITS_DISABLED_PLUGINS, extra=envlist("DIGITS_EXTRA_PLUGINS")
)
INSTALLED_APPS += [app for app in PLUGINS.django_apps() if app not in INSTALLED_APPS]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.usage.audit.AuditMiddleware",  # who acted, for the audit log
    "apps.usage.middleware.RefusalMiddleware",  # a job over quota from a page's button
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # see "Content-Security-Policy" below
    "apps.core.middleware.StoreUnavailableMiddleware",  # 503, never a 500, in an S3 outage
    # Last, as axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "digits_site.urls"
ASGI_APPLICATION = "digits_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = envsecret("DATABASE_URL")
if JOB_SANDBOX:
    DATABASES = {}  # any query raises ImproperlyConfigured: a job reports through its worker
elif DATABASE_URL:
    # Health checks: a connection is tested before its first use in each request, job claim
    # or reaper pass, so a database restart never fails the next query (docs/deploy.md).
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_health_checks=True)}
    # PostgreSQL: a connection pool per process (psycopg_pool, docs/decisions/0022). The web
    # server runs each request in a thread of its own, so a connection kept per thread
    # (CONN_MAX_AGE) was never reused there: every request connected anew. A thread's
    # connection goes back to the pool when Django closes it (end of a request, a worker's
    # message, a background thread's pass); a thread waits DIGITS_DB_POOL_TIMEOUT seconds
    # at most for one, then fails with OperationalError. DIGITS_DB_POOL_MAX_SIZE=0 turns the
    # pool off (PgBouncer in transaction mode pools already): a connection per thread, kept
    # 60 s, as without PostgreSQL.
    _db_pool_max_size = envint("DIGITS_DB_POOL_MAX_SIZE", 10)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _db_pool_max_size > 0:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django refuses a pool with persistent ones
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _db_pool_max_size,
            "timeout": envfloat("DIGITS_DB_POOL_TIMEOUT", 10.0),
        }
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = 60
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # Job workers write from threads while the web reads: wait instead of failing.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- HTTP hardening -----------------------------------------------------------
HTTPS = envbool("DIGITS_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = envint("DIGITS_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if HTTPS:
    # TLS ends at the ingress; it tells us the original scheme.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz/"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Enforced twice: by digits_site.asgi (before the body is read, see
# apps.core.body_limits) and by apps.core.middleware for other entry points.
MAX_UPLOAD_BYTES = envint("DIGITS_MAX_UPLOAD_MB", 2048) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Login throttling (django-axes) -------------------------------------------
# A username is locked for one client address after this many failures in a
# row; a successful login clears the count. Staff unlock in the admin
# ("Access attempts") or with `manage.py axes_reset_username <name>`.
AXES_FAILURE_LIMIT = envint("DIGITS_LOGIN_FAILURE_LIMIT", 5)
# 0: locked until someone unlocks it.
AXES_COOLOFF_TIME = timedelta(minutes=envint("DIGITS_LOGIN_COOLOFF_MINUTES", 15)) or None
# Username and address together: one attacker cannot lock a user out for the
# whole office, and a shared (NAT) address does not lock out everyone behind it.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.locked_out"
# Never record passwords, even failed ones.
AXES_SENSITIVE_PARAMETERS = ["password"]

# --- Content-Security-Policy (django-csp 4) -----------------------------------
# No inline script anywhere: page data goes through `json_script`, behaviour
# through static files (digits/page.js wires confirmations and bar widths).
# Styles: 'self' only as well. `img-src data:` is for Bootstrap's inline SVG
# icons (form controls) and the empty favicon; `blob:` for image previews.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- I18N / static ------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("DIGITS_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("DIGITS_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
#: Production (the images, ``make run``): collectstatic writes each file under a name with
#: its content's hash plus gzip and brotli copies; pages link the hashed names, which
#: whitenoise serves compressed and cached for ten years (immutable). Off (tests, a fresh
#: checkout): files are served from the finders as they are (docs/decisions/0015).
STATIC_MANIFEST = envbool("DIGITS_STATIC_MANIFEST", False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "apps.core.static_storage.HashedStaticFiles"
        if STATIC_MANIFEST
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}
# Serve from the finders when collectstatic has not run (tests, a fresh checkout).
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = DEBUG

# --- Artifact store -----------------------------------------------------------
DIGITS_ARTIFACT_ROOT = Path(envstr("DIGITS_ARTIFACT_ROOT", str(DATA_DIR / "artifacts")))
DIGITS_S3 = {
    "endpoint": envstr("DIGITS_S3_ENDPOINT"),
    "access_key": envsecret("DIGITS_S3_ACCESS_KEY"),
    "secret_key": envsecret("DIGITS_S3_SECRET_KEY"),
    "bucket": envstr("DIGITS_S3_BUCKET", "digits"),
    "secure": envbool("DIGITS_S3_SECURE", False),
    "region": envstr("DIGITS_S3_REGION") or None,
    # Host browsers use for presigned URLs, when it differs from the internal endpoint.
    "public_endpoint": envstr("DIGITS_S3_PUBLIC_ENDPOINT") or None,
}

# Folders on the server that dataset forms may read from (comma list). Paths
# outside them are refused, so a user cannot make a job read /etc.
DIGITS_SERVER_DATA_ROOTS = [
    Path(p).resolve() for p in envlist("DIGITS_SERVER_DATA_ROOTS", str(DATA_DIR / "data"))
]

# Limits on uploaded dataset archives (checked before anything is extracted).
DIGITS_MAX_ARCHIVE_BYTES = envint("DIGITS_MAX_ARCHIVE_BYTES", 10 * 2**30)
DIGITS_MAX_ARCHIVE_MEMBERS = envint("DIGITS_MAX_ARCHIVE_MEMBERS", 1_000_000)
# Object-store prefixes that datasets may be imported from (the store holds every
# user's artifacts: only these prefixes are open to imports).
DIGITS_IMPORT_PREFIXES = envlist("DIGITS_IMPORT_PREFIXES", "imports/")

# --- Broker (dramatiq) --------------------------------------------------------
BROKER_URL = envsecret("DIGITS_BROKER_URL")
DIGITS_EMBEDDED_WORKER = not BROKER_URL
_DRAMATIQ_MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
]
if BROKER_URL.startswith(("amqp://", "amqps://")):
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
        "OPTIONS": {"url": BROKER_URL},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
elif BROKER_URL.startswith(("redis://", "rediss://", "unix://")):
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": BROKER_URL, "namespace": envstr("DIGITS_BROKER_NAMESPACE", "dramatiq")},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
elif not BROKER_URL:
    DRAMATIQ_BROKER = {
        "BROKER": "dramatiq.brokers.stub.StubBroker",
        "OPTIONS": {},
        "MIDDLEWARE": _DRAMATIQ_MIDDLEWARE,
    }
else:
    raise ValueError("DIGITS_BROKER_URL must start with redis://, rediss:// or amqp://")
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks"]
DIGITS_EMBEDDED_WORKER_THREADS = envint("DIGITS_EMBEDDED_WORKER_THREADS", 4)

# --- Channel layer ------------------------------------------------------------
# The live updates publish to this Redis (pub/sub, `<prefix>:live:<group>`) and each web
# process fans out to its own sockets (apps.jobs.fanout, docs/decisions/0012); without
# a URL they stay inside the one process (the embedded default).
CHANNEL_LAYER_URL = envsecret("DIGITS_CHANNEL_LAYER_URL")
if CHANNEL_LAYER_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s read timeout equals channels-redis' receive
                # wait and drops idle consumers; its 100-connection pool is too small
                # for many sockets joining groups at once.
                "hosts": [
                    {"address": CHANNEL_LAYER_URL, "socket_timeout": 15, "max_connections": 1000}
                ],
                "prefix": envstr("DIGITS_CHANNEL_LAYER_PREFIX", "asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Jobs ---------------------------------------------------------------------
# The job sandbox (apps.jobs.sandbox, docs/decisions/0007-job-sandbox.md): "auto" picks
# namespaces when the worker is root, else Landlock, else none (logged).
DIGITS_JOB_SANDBOX = envstr("DIGITS_JOB_SANDBOX", "auto")
DIGITS_JOB_WORK_ROOT = envstr(
    "DIGITS_JOB_WORK_ROOT", str(Path(tempfile.gettempdir()) / "digits-jobs")
)
# How a job process starts (apps.jobs.launcher, docs/decisions/0021): "fork" from a server
# that imported DIGITS_JOB_PRELOAD once, or "exec" a new interpreter per job.
DIGITS_JOB_LAUNCHER = envstr("DIGITS_JOB_LAUNCHER", "fork")
# Libraries only: nothing a Django setting or the job's environment changes at import.
DIGITS_JOB_PRELOAD = envlist(
    "DIGITS_JOB_PRELOAD",
    "numpy,PIL.Image,tensorflow,keras,pydicom,psutil,redis,django.db.models,django.forms,"
    "django.http,django.urls,django.contrib.admin,rest_framework.serializers,channels.layers,"
    "dramatiq,pluggy",
)
DIGITS_JOB_UID_BASE = envint("DIGITS_JOB_UID_BASE", 200000)
DIGITS_JOB_UID_COUNT = envint("DIGITS_JOB_UID_COUNT", 100000)
DIGITS_JOB_ENV_ALLOW = envlist("DIGITS_JOB_ENV_ALLOW")
DIGITS_JOB_HIDDEN_PATHS = envlist("DIGITS_JOB_HIDDEN_PATHS")
# A dead worker is noticed within STALE + REAPER_INTERVAL seconds (bench/heartbeat_rate.py
# measures the write rate these cost; docs/deploy.md "Broker, probes and metrics").
DIGITS_JOB_HEARTBEAT_SECONDS = envint("DIGITS_JOB_HEARTBEAT_SECONDS", 2)
DIGITS_JOB_STALE_SECONDS = envint("DIGITS_JOB_STALE_SECONDS", 10)
# How long a worker keeps running a job while it cannot reach the database.
DIGITS_JOB_DB_GRACE_SECONDS = envint("DIGITS_JOB_DB_GRACE_SECONDS", 60)
# A job's relay must see an outage within that grace: it never waits longer for a pooled
# connection (during an outage the pool waits, where a plain connect fails at once).
if "pool" in DATABASES.get("default", {}).get("OPTIONS", {}):
    _pool = DATABASES["default"]["OPTIONS"]["pool"]
    _pool["timeout"] = min(_pool["timeout"], DIGITS_JOB_DB_GRACE_SECONDS)
DIGITS_JOB_MAX_ATTEMPTS = envint("DIGITS_JOB_MAX_ATTEMPTS", 3)
DIGITS_JOB_REQUEUE_SECONDS = envint("DIGITS_JOB_REQUEUE_SECONDS", 120)
DIGITS_REAPER_INTERVAL = envint("DIGITS_REAPER_INTERVAL", 2)
# The outbox (apps.jobs.outbox): messages the broker did not take are retried every
# INTERVAL seconds, backing off to MAX_BACKOFF while it stays down.
DIGITS_OUTBOX_INTERVAL = envfloat("DIGITS_OUTBOX_INTERVAL", 1.0)
DIGITS_OUTBOX_MAX_BACKOFF = envfloat("DIGITS_OUTBOX_MAX_BACKOFF", 2.0)
DIGITS_OUTBOX_GRACE_SECONDS = envfloat("DIGITS_OUTBOX_GRACE_SECONDS", 1.0)
# Liveness files of the reaper and the workers (apps.jobs.liveness, `manage.py alive`).
DIGITS_LIVENESS_DIR = envstr(
    "DIGITS_LIVENESS_DIR", str(Path(tempfile.gettempdir()) / "digits-liveness")
)
# Seconds the readiness probe reuses a degraded dependency's check (broker, S3, layer).
DIGITS_HEALTH_CACHE_SECONDS = envfloat("DIGITS_HEALTH_CACHE_SECONDS", 5.0)
# /metrics (Prometheus text): staff sessions, or this bearer token when set.
DIGITS_METRICS_TOKEN = envsecret("DIGITS_METRICS_TOKEN")
# Idempotency-Key answers are kept this long (hours).
DIGITS_IDEMPOTENCY_HOURS = envint("DIGITS_IDEMPOTENCY_HOURS", 24)
# How long an aborted child gets to stop cleanly before it is killed.
DIGITS_JOB_KILL_GRACE_SECONDS = envint("DIGITS_JOB_KILL_GRACE_SECONDS", 2)
# Infrastructure faults (docs/deploy.md, "Object store and database faults"): how long an
# object-store call is retried; how often and how late a job that could not reach the store
# is queued again without using up an attempt; when unused uploads and staging are orphans.
DIGITS_STORAGE_RETRY_SECONDS = envint("DIGITS_STORAGE_RETRY_SECONDS", 60)
DIGITS_JOB_MAX_INFRA_RETRIES = envint("DIGITS_JOB_MAX_INFRA_RETRIES", 10)
DIGITS_JOB_INFRA_RETRY_DELAY = envint("DIGITS_JOB_INFRA_RETRY_DELAY", 5)
DIGITS_ORPHAN_GRACE_SECONDS = envint("DIGITS_ORPHAN_GRACE_SECONDS", 86400)
DIGITS_SWEEP_INTERVAL = envint("DIGITS_SWEEP_INTERVAL", 3600)

# --- Scheduling (apps.cluster, docs/decisions/0016-gpu-scheduling.md) ----------
# This node's GPUs: "auto" (NVML), "none", or a list of CUDA device ids ("0,1,2,3").
DIGITS_WORKER_GPUS = envstr("DIGITS_WORKER_GPUS", "auto")
# The node the worker's devices belong to (default: the host name, a pod's name).
DIGITS_NODE_NAME = envstr("DIGITS_NODE_NAME", "")
# Let jobs share a device (each still sees only the devices it reserved).
DIGITS_GPU_SHARING = envbool("DIGITS_GPU_SHARING", False)
# How often a worker reports its node and device figures; a node silent for three
# beats shows as offline.
DIGITS_NODE_HEARTBEAT_SECONDS = envint("DIGITS_NODE_HEARTBEAT_SECONDS", 10)


# --- Quotas (apps.usage.quotas, docs/decisions/0017-quotas-and-accounting.md) -----------
# Defaults for every user (DIGITS_QUOTA_*) and team (DIGITS_QUOTA_TEAM_*); an admin
# overrides them per user or team (admin: Quotas). Unset or empty: no limit.
def _quota(name: str, default=None, cast=int):
    raw = envstr(name, "").strip()
    try:
        return cast(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


_QUOTA_RESOURCES = (
    ("concurrent_jobs", "CONCURRENT_JOBS", int), ("concurrent_gpus", "CONCURRENT_GPUS", int),
    ("gpu_hours_per_month", "GPU_HOURS", float), ("storage_bytes", "STORAGE_BYTES", int),
)  # fmt: skip
DIGITS_QUOTA = {
    name: _quota(f"DIGITS_QUOTA_{env}", cast=cast) for name, env, cast in _QUOTA_RESOURCES
}
DIGITS_QUOTA_TEAM = {
    name: _quota(f"DIGITS_QUOTA_TEAM_{env}", cast=cast) for name, env, cast in _QUOTA_RESOURCES
}
# Limits on job parameters that cost resources (a user's, or a team's set by an admin).
DIGITS_QUOTA.update(
    max_processes=_quota("DIGITS_QUOTA_MAX_PROCESSES", 16),
    max_steps=_quota("DIGITS_QUOTA_MAX_STEPS", 1000),
    max_epochs=_quota("DIGITS_QUOTA_MAX_EPOCHS", 1000),
    max_image_side=_quota("DIGITS_QUOTA_MAX_IMAGE_SIDE", 4096),
)

# --- Warm inference (apps.inference, docs/decisions/0011-warm-inference.md) ----------
# Where the inference server listens: unix:///path or tcp://host:port. Unset: a socket in
# the data folder, served by `manage.py serve` itself (the embedded default).
DIGITS_INFERENCE_URL = envstr("DIGITS_INFERENCE_URL", "")
# Memory a model process may fill with cached models (MiB, TensorFlow included); the least
# recently used models are evicted beyond it.
DIGITS_INFERENCE_MEMORY_MB = envint("DIGITS_INFERENCE_MEMORY_MB", 2048)
# Model processes per inference server: one shared, one per owner of custom network code.
DIGITS_INFERENCE_PROCESSES = envint("DIGITS_INFERENCE_PROCESSES", 3)
# How often a server forgets models deleted or retrained through another server.
DIGITS_INFERENCE_SWEEP_SECONDS = envint("DIGITS_INFERENCE_SWEEP_SECONDS", 30)
# Seconds the Test page and /infer/ give a data plugin to validate and encode the inputs.
DIGITS_INFERENCE_READ_TIMEOUT = envint("DIGITS_INFERENCE_READ_TIMEOUT", 30)

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "digits API",
    "DESCRIPTION": "Datasets, models and training jobs. Authenticate with `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a `status`; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.models.JobStatus",
        "DatasetStatusEnum": "apps.datasets.models.Dataset.Status",
        "TrainedModelStatusEnum": "apps.mlmodels.models.TrainedModel.Status",
        "EvaluationStatusEnum": "apps.evaluations.models.Evaluation.Status",
        "EvaluationSourceEnum": "apps.evaluations.models.Evaluation.Source",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.api.document_read_only_tokens",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("DIGITS_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
