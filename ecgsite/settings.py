"""ecgsite settings: one module, read from the environment.

Nothing set gives the embedded default that `make run` uses: SQLite under var/, jobs run on a
worker thread inside the web process, websocket events travel through an in-process channel
layer. Setting DATABASE_URL and REDIS_URL switches to the real stack (MySQL/MariaDB, Celery
workers, Redis channel layer). ECGSITE_PRODUCTION=1 turns on the production safety settings.
"""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ecgsite.env import env_bool, env_int, env_list, env_str, redis_url_db, redis_url_with_db
from ml.preprocess import MAX_PIXELS

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ECGSITE_VAR_DIR", str(BASE_DIR / "var")))

PRODUCTION = env_bool("ECGSITE_PRODUCTION", False)
DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when ECGSITE_PRODUCTION=1.")
    # A random key per checkout, kept so sessions survive restarts; never a shared default.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For / X-Forwarded-Proto are
# believed (ecgsite.proxies); from any other peer those headers are dropped. Empty: none.
ECGSITE_TRUSTED_PROXIES = env_list("ECGSITE_TRUSTED_PROXIES", [])
for _proxy in ECGSITE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:  # at start, not as a 500 on every request
        raise ImproperlyConfigured(f"ECGSITE_TRUSTED_PROXIES: {_proxy!r} is no address or network.") from None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "accounts",
    "classifier",
    "worker",
]

MIDDLEWARE = [
    "ecgsite.middleware.RequestIdMiddleware",  # first: every response, even a redirect, has an id
    # Before the host check and the https redirect: probes come by pod address over plain HTTP.
    "ecgsite.middleware.OperationsEndpointsMiddleware",
    # Before SecurityMiddleware: its https redirect reads X-Forwarded-Proto (trusted proxies only).
    "ecgsite.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so static files keep their own caching: no-store and the CSP on the rest.
    "ecgsite.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.VerifiedEmailRequiredMiddleware",
]

ROOT_URLCONF = "ecgsite.urls"
ASGI_APPLICATION = "ecgsite.asgi.application"
WSGI_APPLICATION = None

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

# Database: DATABASE_URL (mysql://user:pass@host:port/name) or an SQLite file under var/.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # 0: a connection per request. Under ASGI (daphne) each request may run on a new thread, so
    # persistent connections pile up until MySQL refuses more ("Too many connections", found by
    # bench/load.py); Django's docs say to disable them under ASGI.
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
    if _database["ENGINE"] == "django.db.backends.mysql":
        _database.setdefault("OPTIONS", {}).update(
            {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}
        )
        _database.setdefault("TEST", {}).update({"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"})
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        # The embedded worker thread writes while requests read: wait instead of failing.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# django-allauth: email + password accounts.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
# Mandatory, not configurable: an unconfirmed account may be someone else's address waiting for
# its owner (account pre-hijacking). With it, allauth's enumeration prevention also covers
# signup: a taken address gets the same answer, and its owner an email.
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
# Failed sign-ins are limited per address and per account (the admin's login is this one too:
# ecgsite/admin_login.py). Sliding windows: failures age out, so a guesser is slowed rather than
# an account locked until someone unlocks it. The limit also refuses the right password (no
# oracle), so anyone can close an account's password door for a while: its owner then signs in
# by a one-time code sent by email, which this limit does not touch.
ACCOUNT_RATE_LIMITS = {"login_failed": env_str("ECGSITE_LOGIN_FAILED_RATE", "10/m/ip,5/5m/key")}
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"  # the lockout message names the code door
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
LOGIN_REDIRECT_URL = "classifier:upload"
LOGIN_URL = "account_login"

# Email: printed to the console unless an SMTP host is configured.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend (the live-stack tests read
# confirmation links from it).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ecgsite <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target, served by WhiteNoise in production; in development files are
# served straight from static/ and the apps.
STATIC_ROOT = env_str("STATIC_ROOT") or (str(VAR_DIR / "staticfiles") if PRODUCTION else None)
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# No MEDIA_URL is served: images leave only through a view that checks ownership.
# ECGSITE_MEDIA_STORAGE=s3 keeps the uploads in an S3 bucket (django-storages), so web and
# workers on separate machines share nothing but it; "local" (the default) is MEDIA_ROOT.
ECGSITE_MEDIA_STORAGE = env_str("ECGSITE_MEDIA_STORAGE", "local")
if ECGSITE_MEDIA_STORAGE == "local":
    _MEDIA_BACKEND: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif ECGSITE_MEDIA_STORAGE == "s3":
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("ECGSITE_MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME.")
    _MEDIA_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            # Empty: AWS itself; set for an S3-compatible server (MinIO, Ceph, a cloud's own).
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            # Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or the pod's role (boto3's chain).
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            # Patient images: private objects, never overwritten, no public URLs handed out.
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    raise ImproperlyConfigured("ECGSITE_MEDIA_STORAGE must be 'local' or 's3'.")
STORAGES = {
    "default": _MEDIA_BACKEND,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Queue and live events. REDIS_URL switches both to Redis; otherwise they stay in-process.
REDIS_URL = env_str("REDIS_URL")
ECGSITE_TASK_RUNNER = env_str("ECGSITE_TASK_RUNNER", "celery" if REDIS_URL else "embedded")
if ECGSITE_TASK_RUNNER not in {"celery", "embedded"}:
    raise ImproperlyConfigured("ECGSITE_TASK_RUNNER must be 'celery' or 'embedded'.")

# Longest a classification may run; the broker must not redeliver a message sooner.
CLASSIFY_SOFT_TIME_LIMIT = env_int("ECGSITE_CLASSIFY_SOFT_TIME_LIMIT", 120)
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200)}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# Safe because a job's attempts are capped in the database (ECGSITE_MAX_ATTEMPTS).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A prefork child loads the model (worker.tasks.load_model_after_fork) before it reports up:
# Celery's 4 s default kills a child still loading TensorFlow, and the next, and the next.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 120)
CELERY_TASK_DEFAULT_QUEUE = "classify"
# Webhook deliveries, their sweep and the reaper run on a queue of their own with its own
# workers, so they never wait behind classifications (nor a classify worker behind them).
MAINTENANCE_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    name: {"queue": MAINTENANCE_QUEUE}
    for name in ("worker.deliver_webhook", "worker.sweep_webhooks", "worker.reap_stale_jobs")
}
# An upload sends one queue message per this many jobs, and one classify task claims up to this
# many queued jobs for the same model (worker.tasks.classify); a lone job waits at most
# ECGSITE_CLASSIFY_BATCH_WAIT_MS for company. 1 turns batching off.
ECGSITE_CLASSIFY_BATCH_SIZE = env_int("ECGSITE_CLASSIFY_BATCH_SIZE", 16)
ECGSITE_CLASSIFY_BATCH_WAIT_MS = env_int("ECGSITE_CLASSIFY_BATCH_WAIT_MS", 50)
# TensorFlow's threads per worker process; 0: the cores this process may run on (its CPU
# affinity: taskset, a container's cpuset) divided by the worker's concurrency.
ECGSITE_TF_THREADS = env_int("ECGSITE_TF_THREADS", 0)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The reaper (beat task worker.reap_stale_jobs, `manage.py reap_stale_jobs` from cron, or the
# embedded runner's timer thread): the database is the record, so a job whose message was lost
# (a Redis restart) or whose worker died is handed back to the queue, and failed after
# ECGSITE_MAX_ATTEMPTS claims with a message its owner sees.
# A queued job untouched this long is enqueued again under a fresh task id.
ECGSITE_QUEUED_TIMEOUT_S = env_int("ECGSITE_QUEUED_TIMEOUT_S", 600)
# A job running this long is presumed dead: keep it above the hard time limit (1.2 x soft).
ECGSITE_RUNNING_TIMEOUT_S = env_int("ECGSITE_RUNNING_TIMEOUT_S", int(CLASSIFY_SOFT_TIME_LIMIT * 1.2) + 60)
ECGSITE_REAPER_INTERVAL_S = env_int("ECGSITE_REAPER_INTERVAL_S", 5)
# A running job is leased to its worker: the claim leases it for ECGSITE_LEASE_S, and the
# worker's heartbeat thread (worker.heartbeat) renews the lease every ECGSITE_HEARTBEAT_S while
# the worker lives, however long the job takes. The reaper hands back a job whose lease ran
# out, so a dead or frozen worker's job is queued again within ECGSITE_LEASE_S plus one reaper
# interval (20 s by default). ECGSITE_RUNNING_TIMEOUT_S still covers rows from before leases.
ECGSITE_HEARTBEAT_S = env_int("ECGSITE_HEARTBEAT_S", 5)
ECGSITE_LEASE_S = env_int("ECGSITE_LEASE_S", 15)
if ECGSITE_HEARTBEAT_S < 1 or ECGSITE_LEASE_S < 2 * ECGSITE_HEARTBEAT_S:
    raise ImproperlyConfigured(
        "ECGSITE_LEASE_S must be at least twice ECGSITE_HEARTBEAT_S (>= 1), so that one late "
        "heartbeat does not cost a living worker its job."
    )
# A worker not heard from for this long is gone (the health endpoint and ecgsite_workers).
ECGSITE_WORKER_GONE_S = 3 * ECGSITE_HEARTBEAT_S
# Where each worker process also writes its heartbeat, for `python -m worker.alive` (the
# container's probe, which reads the same variable without starting Django).
ECGSITE_WORKER_HEARTBEAT_FILE = env_str("ECGSITE_WORKER_HEARTBEAT_FILE", "/tmp/ecgsite-worker-heartbeat.json")
ECGSITE_REAPER_BATCH_SIZE = env_int("ECGSITE_REAPER_BATCH_SIZE", 200)
# Tests only (tests/realstack/test_faults.py): the classify task sleeps this long after the
# first claim of a job, so a fault test can kill its worker mid-task. Never set in production.
ECGSITE_TEST_PAUSE_AFTER_CLAIM_S = env_int("ECGSITE_TEST_PAUSE_AFTER_CLAIM_S", 0)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, which aborts the channel
            # layer's blocking 5 s BZPOPMIN and drops every idle websocket (channels_redis#422).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "ecgsite.channel_layers.ThreadSafeInMemoryChannelLayer"}}


def _cache_redis_url(redis_url: str) -> str:
    """ECGSITE_CACHE_URL, else the database after REDIS_URL's on the same server: never the
    queue's own database, since clearing the cache (FLUSHDB) empties a whole database."""
    cache_url = env_str("ECGSITE_CACHE_URL")
    if cache_url:
        if cache_url.rstrip("/") == redis_url.rstrip("/"):
            raise ImproperlyConfigured("ECGSITE_CACHE_URL must name another Redis database than REDIS_URL.")
        return cache_url
    try:
        queue_db = redis_url_db(redis_url)
    except ValueError as error:
        raise ImproperlyConfigured(f"REDIS_URL: {error}; or set ECGSITE_CACHE_URL.") from None
    if queue_db >= 15:
        raise ImproperlyConfigured(
            f"REDIS_URL uses Redis database {queue_db}; set ECGSITE_CACHE_URL to a database of its own."
        )
    return redis_url_with_db(redis_url, queue_db + 1)


# The cache holds the login (allauth) and API rate-limit counters. With REDIS_URL it lives in
# Redis, so every web process counts against the same limits (in process memory while Redis
# is unreachable: ecgsite/cache.py); otherwise in each process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "ecgsite.cache.FallbackRedisCache",
            "LOCATION": _cache_redis_url(REDIS_URL),
            "KEY_PREFIX": "ecgsite",
            # A Redis that stops answering fails the request in seconds instead of hanging it.
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Classification.
ECGSITE_MODEL = env_str("ECGSITE_MODEL", "")  # a shipped model name or a path; empty: the default
ECGSITE_MAX_ATTEMPTS = env_int("ECGSITE_MAX_ATTEMPTS", 3)
ECGSITE_MAX_UPLOAD_BYTES = env_int("ECGSITE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
ECGSITE_MAX_FILES_PER_BATCH = env_int("ECGSITE_MAX_FILES_PER_BATCH", 200)
# The decoded size ceiling may be lowered, never raised above ml.preprocess.MAX_PIXELS: the workers
# and the command-line tools apply that one.
ECGSITE_MAX_IMAGE_PIXELS = env_int("ECGSITE_MAX_IMAGE_PIXELS", MAX_PIXELS)
if not 0 < ECGSITE_MAX_IMAGE_PIXELS <= MAX_PIXELS:
    raise ImproperlyConfigured(
        f"ECGSITE_MAX_IMAGE_PIXELS must be between 1 and {MAX_PIXELS:,} (ml.preprocess.MAX_PIXELS, "
        "which the workers apply too); it may only lower the ceiling."
    )
# Refuse uploads that do not look like a 12-lead ECG printout (ml.guard: photos, text pages,
# screenshots, blank pages), with the reason, instead of classifying them into one of the labels.
ECGSITE_OOD_GUARD = env_bool("ECGSITE_OOD_GUARD", True)
# Explain each hybrid prediction (ml.explain: which lead and seconds drove it, and an overlay);
# a few tenths of a second of a worker's CPU per page (bench.explain). Off: results only, at full speed.
ECGSITE_EXPLANATIONS = env_bool("ECGSITE_EXPLANATIONS", True)
# The admin's model comparison also shows every cross-validation report (crossval-<arch>.json from
# `python -m ml.crossval`) in this folder: all architectures on the same folds, shipped or not.
ECGSITE_CROSSVAL_REPORTS_DIR = Path(env_str("ECGSITE_CROSSVAL_REPORTS_DIR", str(BASE_DIR / "ml" / "reports")))
# Django's own ceiling (it answers a bare 400 and logs an error) stays well above ours, so a
# batch with too many files gets our message; it still bounds what one request can parse.
DATA_UPLOAD_MAX_NUMBER_FILES = 5 * ECGSITE_MAX_FILES_PER_BATCH
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Largest request body, refused with 413 before it is read (ecgsite.request_limits). 256 MiB holds
# a full batch of typical scans (200 files of 100-500 KB); the proxy in front should refuse the
# same (nginx: client_max_body_size 256m).
ECGSITE_MAX_REQUEST_BYTES = env_int("ECGSITE_MAX_REQUEST_BYTES", 256 * 1024 * 1024)

REST_FRAMEWORK = {
    # Token first: DRF answers 401 (not 403) with the first class's WWW-Authenticate challenge.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "classifier.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "classifier.api.permissions.HasVerifiedEmail",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "classifier.api.problems.problem_exception_handler",
}
# Per token (or per signed-in user) request rates of the API, by scope; DRF's "N/period" form.
# For fairness, not security: the counters live in CACHES (shared through Redis on the real stack).
ECGSITE_API_THROTTLE_RATES = {
    "api": env_str("ECGSITE_API_RATE", "600/min"),
    "api-upload": env_str("ECGSITE_API_UPLOAD_RATE", "60/min"),
}
# Failed token authentications per client address (REMOTE_ADDR); over it, 429 for any key, a
# right one included, before the key is looked up. Security, unlike the rates above: slows guessing.
ECGSITE_API_TOKEN_FAILURE_RATE = env_str("ECGSITE_API_TOKEN_FAILURE_RATE", "20/min")
SPECTACULAR_SETTINGS = {
    "TITLE": "ecgsite API",
    "DESCRIPTION": "Submit images of printed 12-lead ECGs and collect per-class probabilities. "
    "See docs/API.md. Errors are RFC 9457 problem details (application/problem+json).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    # Interactive docs from files we serve ourselves: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "classifier.api.problems.schema_content_types_hook",
    ],
}

# Webhooks (batch.completed POSTed to a batch's callback_url).
# Private, loopback and link-local callback addresses are refused unless this is set.
ECGSITE_WEBHOOK_ALLOW_PRIVATE = env_bool("ECGSITE_WEBHOOK_ALLOW_PRIVATE", False)
ECGSITE_WEBHOOK_MAX_ATTEMPTS = env_int("ECGSITE_WEBHOOK_MAX_ATTEMPTS", 8)
ECGSITE_WEBHOOK_TIMEOUT_S = env_int("ECGSITE_WEBHOOK_TIMEOUT_S", 10)
# Time limits of the maintenance tasks: a delivery is one HTTP request (its timeout above); a
# sweep or a reaper run is a few queries. The hard limit kills what hangs anyway.
MAINTENANCE_SOFT_TIME_LIMIT = env_int("ECGSITE_MAINTENANCE_SOFT_TIME_LIMIT", 60)
# Waits between attempts: base * 2^(n-1) (±20 %), capped: 30 s, 1, 2, 4, 8, 10, 10 min.
ECGSITE_WEBHOOK_BACKOFF_S = env_int("ECGSITE_WEBHOOK_BACKOFF_S", 30)
ECGSITE_WEBHOOK_BACKOFF_MAX_S = env_int("ECGSITE_WEBHOOK_BACKOFF_MAX_S", 600)
# Longest wait handed to the broker as a countdown (far below its visibility timeout); longer
# waits are left to the periodic sweep, which finds due deliveries in the database.
ECGSITE_WEBHOOK_MAX_COUNTDOWN_S = env_int("ECGSITE_WEBHOOK_MAX_COUNTDOWN_S", 900)
CELERY_BEAT_SCHEDULE = {
    "sweep-webhooks": {"task": "worker.sweep_webhooks", "schedule": 60.0},
    # A run still waiting when the next is due is dropped (expires), so none pile up in the queue.
    "reap-stale-jobs": {
        "task": "worker.reap_stale_jobs",
        "schedule": float(ECGSITE_REAPER_INTERVAL_S),
        "options": {"expires": float(ECGSITE_REAPER_INTERVAL_S)},
    },
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# "json": one JSON object per line (python-json-logger) with the request's or the jobs' ids,
# for a log collector; "plain" reads better in a terminal. Production defaults to JSON.
ECGSITE_LOG_FORMAT = env_str("ECGSITE_LOG_FORMAT", "json" if PRODUCTION else "plain")
if ECGSITE_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("ECGSITE_LOG_FORMAT must be 'json' or 'plain'.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "ecgsite.log_context.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(job_ids)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": ECGSITE_LOG_FORMAT, "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}

# Absolute address of the site, for links in emails.
ECGSITE_SITE_URL = env_str("ECGSITE_SITE_URL", "http://127.0.0.1:8000")

# GET /metrics (Prometheus text) answers only `Authorization: Bearer <this>`; empty: to nobody.
ECGSITE_METRICS_TOKEN = env_str("ECGSITE_METRICS_TOKEN")
