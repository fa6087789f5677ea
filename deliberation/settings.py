"""Hemicycle settings: one module, switched by the environment.

With nothing set you get the embedded default (SQLite, in-memory channel layer, a Celery worker
inside the web process on kombu's memory transport, the bundled model). Set DATABASE_URL and
REDIS_URL for the production stack; see README.md and .env.example.
"""

import json
import os
from pathlib import Path

import dj_database_url

from deliberation.classroom.lan import lan_address

BASE_DIR = Path(__file__).resolve().parent.parent

# litellm fetches a price list from the internet on import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_env_load(path: str) -> None:
    """The local try-out's settings file (var/local.env, written by `make run`), so that the
    README's `.venv/bin/python manage.py ...` commands get the server's settings in this checkout.
    The real environment wins over it; a production host has no such file; "" reads none."""
    if path and os.path.isfile(path):
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


local_env_load(os.environ.get("HEMICYCLE_LOCAL_ENV", str(BASE_DIR / "var" / "local.env")))

# Off unless asked for: a production host that forgets the variable must not show tracebacks or
# the debug 404 page. `make run` (the embedded default) and the test setup turn it on.
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (the default); "
            "for a local try-out use `make run`, or set DJANGO_DEBUG=1"
        )
    SECRET_KEY = "dev-only-insecure-key-never-used-in-production"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# Classroom join links and QR codes: HEMICYCLE_PUBLIC_URL (e.g. https://lab.example.edu) when the
# lab has a public name; else the request's host, or, when the teacher browses on this machine
# (loopback), this machine's LAN address, which the embedded default (DEBUG, no
# DJANGO_ALLOWED_HOSTS) then also accepts, so that `make run HOST=0.0.0.0` serves students' phones.
HEMICYCLE_PUBLIC_URL = os.environ.get("HEMICYCLE_PUBLIC_URL", "").rstrip("/")
HEMICYCLE_LAN_ADDRESS = lan_address() if DEBUG and "DJANGO_ALLOWED_HOSTS" not in os.environ else None
if HEMICYCLE_LAN_ADDRESS:
    ALLOWED_HOSTS.append(HEMICYCLE_LAN_ADDRESS)
# Throttling (deliberation/throttling.py; django-ratelimit on the shared cache). Joins: attempts per
# minute per (client address, join code), enough for a class behind one NAT; lookups of join codes
# (the join form, unknown codes, QR codes) per address; sign-in per (address, user name) and per
# address. Rates as django-ratelimit writes them: "10/m", "100/h".
HEMICYCLE_JOIN_RATE = int(os.environ.get("HEMICYCLE_JOIN_RATE", "60"))
HEMICYCLE_JOIN_LOOKUP_RATE = os.environ.get("HEMICYCLE_JOIN_LOOKUP_RATE", "60/m")
HEMICYCLE_SIGNIN_RATE = os.environ.get("HEMICYCLE_SIGNIN_RATE", "10/m")
HEMICYCLE_SIGNIN_ADDRESS_RATE = os.environ.get("HEMICYCLE_SIGNIN_ADDRESS_RATE", "60/m")
# The address uvicorn listens on (the Makefile passes it): the classroom console warns when
# phones cannot reach it (loopback only).
HEMICYCLE_BIND_HOST = os.environ.get("HEMICYCLE_BIND_HOST", "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # serves the API docs' assets from our static files, not a CDN
    "deliberation.records",
    "deliberation.scenarios",
    "deliberation.registry",
    "deliberation.runs",
    "deliberation.live",
    "deliberation.dashboards",
    "deliberation.classroom",
    "deliberation.calibration",
    "deliberation.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "deliberation.errors.ApplicationErrorMiddleware",  # an ApplicationError a view lets through: its status
]

ROOT_URLCONF = "deliberation.urls"
ASGI_APPLICATION = "deliberation.asgi.application"
WSGI_APPLICATION = "deliberation.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "deliberation.records.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded worker writes from another thread while the page reads: wait, don't fail.
    # IMMEDIATE: a transaction takes the write lock when it begins, so that two that read, then
    # write (an experiment's top-up beside a run's step) wait for each other instead of failing
    # at once with "database is locked" (the busy timeout cannot help a read lock's upgrade).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # The dashboards' covering index (runs.Run.Meta) INCLUDEs columns for PostgreSQL's
    # index-only scans; SQLite builds it on the key columns alone, which is all it can use.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "my-dashboard"  # your runs and experiments, and the next steps
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
SERVESTATIC_USE_FINDERS = DEBUG

# Redis: one server, separate databases for the broker, the channel layer and the cache.
REDIS_URL = os.environ.get("REDIS_URL", "")


def redis_db(url: str, db: int) -> str:
    base = url.rstrip("/")
    if base.rsplit("/", 1)[-1].isdigit() and base.count("/") > 2:
        base = base.rsplit("/", 1)[0]
    return f"{base}/{db}"


if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_db(REDIS_URL, 2)}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_db(REDIS_URL, 1)], "capacity": 1500, "expiry": 30},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery. The same task code runs embedded (memory broker, worker thread in the web process)
# and in production (Redis broker, separate worker processes).
CELERY_BROKER_URL = redis_db(REDIS_URL, 0) if REDIS_URL else "memory://"
CELERY_EMBEDDED_WORKER = env_bool("CELERY_EMBEDDED_WORKER", not REDIS_URL)
CELERY_EMBEDDED_CONCURRENCY = int(os.environ.get("CELERY_EMBEDDED_CONCURRENCY", "4"))
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# A task whose worker died is redelivered once it has been unacknowledged for the visibility
# timeout (keep it above the longest task); workers look for such tasks about every
# interval x throttle seconds (kombu's default: 10 x 10).
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "7200")),
        "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_INTERVAL", "10")),
        "unacked_restore_throttle": int(os.environ.get("CELERY_UNACKED_RESTORE_THROTTLE", "10")),
    }
    if REDIS_URL
    else {"polling_interval": 0.01}
)
# Queue "runs": orchestration and calls to model servers (CPU hosts). Queue "models": runs whose
# model is loaded in the worker process (GPU hosts; see runs.services.run_queue).
CELERY_TASK_DEFAULT_QUEUE = "runs"
# Hard and soft limits where the pool enforces them (prefork), kept under the visibility timeout
# so that a task is never redelivered while it still runs; every model call has its own timeout.
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", "6600"))
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "6300"))
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-runs": {"task": "deliberation.runs.tasks.runs_sweep_task", "schedule": 300.0},
    "expire-completions": {"task": "deliberation.runs.tasks.completions_expire_task", "schedule": 3600.0},
    "reclaim-lost-runs": {
        "task": "deliberation.runs.tasks.runs_reclaim_task",
        "schedule": float(os.environ.get("HEMICYCLE_RUN_RECLAIM_S", "10")),
    },
    "reclaim-lost-calibrations": {
        "task": "deliberation.calibration.tasks.calibrations_reclaim_task",
        "schedule": float(os.environ.get("HEMICYCLE_RUN_RECLAIM_S", "10")),
    },
}

# Models. Users pick from the model registry (deliberation/registry, edited in the admin); each
# entry names a backend model string: "scripted:NAME", "local:smollm2-135m", or any litellm model
# string (e.g. "openai/gpt-4o-mini", "hosted_vllm/Qwen/Qwen2.5-7B-Instruct") with its endpoint.
# Every migrate creates the entries below that the registry lacks (JSON list in the environment:
# [{"name": ..., "model": ..., "api_base": ..., "api_key_env": ..., "concurrency": ...,
#   "access": "everyone"|"staff"|"groups", "groups": [...], "description": ...}]), and the
# default model when it is none of them. Entries without an endpoint use the API base and key here.
HEMICYCLE_DEFAULT_MODEL = os.environ.get("HEMICYCLE_DEFAULT_MODEL", "local:smollm2-135m")
HEMICYCLE_MODELS = json.loads(os.environ.get("HEMICYCLE_MODELS", "null")) or [
    {
        "name": "local:smollm2-135m",
        "description": "the bundled SmolLM2-135M, in-process llama.cpp on this machine",
        "position": 0,
    },
    {
        "name": "scripted:demo",
        "description": "scripted, about a second a call: a first look at the live page",
        "position": 5,
    },
    {
        "name": "scripted:default",
        "description": "scripted test double: no model, instant, meaningless text",
        "position": 10,
    },
    {"name": "scripted:slow", "description": "scripted, 0.05 s a call: slow enough to watch", "position": 11},
    {
        "name": "scripted:bad-judge",
        "description": "scripted, a judge that never answers a digit (tests)",
        "position": 12,
    },
    {"name": "scripted:fail", "description": "scripted, every call times out (tests the failure path)", "position": 13},
    {
        "name": "scripted:no-logprobs",
        "description": "scripted, without next-token log-probabilities (tests)",
        "position": 14,
    },
    {
        "name": "scripted:flaky",
        "description": "scripted, each call answers on its second attempt (tests retry events)",
        "position": 15,
    },
]
HEMICYCLE_MODEL_API_BASE = os.environ.get("HEMICYCLE_MODEL_API_BASE", "")
HEMICYCLE_MODEL_API_KEY = os.environ.get("HEMICYCLE_MODEL_API_KEY", "")
HEMICYCLE_MODEL_TIMEOUT_S = float(os.environ.get("HEMICYCLE_MODEL_TIMEOUT_S", "120"))
HEMICYCLE_MODEL_MAX_RETRIES = int(os.environ.get("HEMICYCLE_MODEL_MAX_RETRIES", "3"))
HEMICYCLE_LOCAL_THREADS = int(os.environ.get("HEMICYCLE_LOCAL_THREADS", "0")) or None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"LiteLLM": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

if not DEBUG:
    # No SECURE_PROXY_SSL_HEADER: Django would believe X-Forwarded-Proto from any client. Whether a
    # request came over https is the ASGI server's word (the scope's scheme): uvicorn --proxy-headers
    # takes X-Forwarded-Proto, like X-Forwarded-For, only from FORWARDED_ALLOW_IPS (docker/Dockerfile).
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "3600"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Runs: a task attempt that dies or whose model keeps failing is retried, this many times in all.
HEMICYCLE_RUN_MAX_ATTEMPTS = int(os.environ.get("HEMICYCLE_RUN_MAX_ATTEMPTS", "3"))
HEMICYCLE_RUN_RETRY_DELAY_S = float(os.environ.get("HEMICYCLE_RUN_RETRY_DELAY_S", "2"))
# Experiments keep at most this many runs in flight per model backend (the longest matching prefix
# of the model string, else "*"), over all running experiments: one in-process model per worker,
# many scripted runs, a few on a hosted API or vLLM server. JSON in the environment. A registry
# model with a concurrency of its own (admin) has that bound instead, for itself alone.
HEMICYCLE_MODEL_CONCURRENCY = json.loads(
    os.environ.get("HEMICYCLE_MODEL_CONCURRENCY", '{"local:": 1, "scripted:": 8, "*": 4}')
)
HEMICYCLE_LOCAL_MODEL_QUEUE = os.environ.get("HEMICYCLE_LOCAL_MODEL_QUEUE", "models")
# Spending per user (a UserBudget in the admin overrides them per user; empty: no limit):
# uncached model steps and model tokens in any 24 hours, and the step cap of an experiment
# created without one.
HEMICYCLE_DAILY_STEPS = int(os.environ.get("HEMICYCLE_DAILY_STEPS") or 0) or None
HEMICYCLE_DAILY_TOKENS = int(os.environ.get("HEMICYCLE_DAILY_TOKENS") or 0) or None
HEMICYCLE_EXPERIMENT_CAP = int(os.environ.get("HEMICYCLE_EXPERIMENT_CAP") or 0) or None
# Beat's sweeps: a queued or running run silent this long is enqueued again; cached completions
# older than this many days are dropped (0 keeps them forever, for exact re-runs).
HEMICYCLE_STUCK_RUN_S = float(os.environ.get("HEMICYCLE_STUCK_RUN_S", "1800"))
# A worker stamps the runs its tasks advance (and the queued runs whose tasks it received and has
# not started) every HEMICYCLE_RUN_HEARTBEAT_S; beat's reclaim (HEMICYCLE_RUN_RECLAIM_S above)
# queues again such a run not stamped for HEMICYCLE_RUN_LOST_S,
# and a second task of a run that is stamped leaves it alone (runs.recovery).
HEMICYCLE_RUN_HEARTBEAT_S = float(os.environ.get("HEMICYCLE_RUN_HEARTBEAT_S", "5"))
HEMICYCLE_RUN_LOST_S = float(os.environ.get("HEMICYCLE_RUN_LOST_S", "30"))
HEMICYCLE_CACHE_TTL_DAYS = float(os.environ.get("HEMICYCLE_CACHE_TTL_DAYS", "0"))
# New users may create their own account from the sign-in page (on by default in the embedded mode).
HEMICYCLE_OPEN_SIGNUP = env_bool("HEMICYCLE_OPEN_SIGNUP", DEBUG)

# Record uploads (staff): each uploaded file, and each zip archive's members and inflated bytes.
HEMICYCLE_UPLOAD_MAX_BYTES = int(os.environ.get("HEMICYCLE_UPLOAD_MAX_BYTES", str(100 * 2**20)))
HEMICYCLE_UPLOAD_MAX_ZIP_MEMBERS = int(os.environ.get("HEMICYCLE_UPLOAD_MAX_ZIP_MEMBERS", "2000"))
HEMICYCLE_UPLOAD_MAX_UNCOMPRESSED_BYTES = int(
    os.environ.get("HEMICYCLE_UPLOAD_MAX_UNCOMPRESSED_BYTES", str(1024 * 2**20))
)
# Request bodies (deliberation/bodylimit.py, before Django reads them): every request, and a record
# upload's whole request (its files together, plus the form).
HEMICYCLE_MAX_BODY_BYTES = int(os.environ.get("HEMICYCLE_MAX_BODY_BYTES", str(4 * 2**20)))
HEMICYCLE_UPLOAD_MAX_REQUEST_BYTES = int(
    os.environ.get("HEMICYCLE_UPLOAD_MAX_REQUEST_BYTES", str(HEMICYCLE_UPLOAD_MAX_BYTES + 2**20))
)
MEDIA_ROOT = Path(os.environ.get("HEMICYCLE_MEDIA_ROOT", BASE_DIR / "var" / "media"))
MEDIA_URL = "/media/"  # never served: uploads are read by the import task only
