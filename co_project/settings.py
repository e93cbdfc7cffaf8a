"""One settings module, driven by the environment (12-factor) and an optional `.env` file.

`CO_ENV` picks the safety posture: `production` (the default, so a forgotten variable never
weakens a deployment), `development` (what `make run` uses) or `test` (what `make test` uses).
Outside development and test, a missing secret key or JWT public key stops start-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Under pytest the posture defaults to `test`; every other process defaults to `production`.
CO_ENV = env.str("CO_ENV", default="test" if "pytest" in sys.modules else "production")
if CO_ENV not in {"production", "development", "test"}:
    raise ImproperlyConfigured(f"CO_ENV must be production, development or test, not {CO_ENV!r}")
IS_PRODUCTION = CO_ENV == "production"

# --- core -------------------------------------------------------------------------------

DEBUG = env.bool("CO_DEBUG", default=False)
if IS_PRODUCTION and DEBUG:
    raise ImproperlyConfigured("CO_DEBUG must be off in production (CO_ENV=production).")

SECRET_KEY = env.str("CO_SECRET_KEY", default="")
if not SECRET_KEY:
    if IS_PRODUCTION:
        raise ImproperlyConfigured(
            "CO_SECRET_KEY is not set. Set it to a long random string in production, or set CO_ENV=development for a local run."
        )
    SECRET_KEY = "dev-insecure-only-for-local-development-and-tests-0123456789"  # noqa: S105 - never in production

ALLOWED_HOSTS = env.list("CO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if IS_PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "co_project",
    "tracks",
    "sessions_app",
    "submissions",
    "tutoring",
    "study_paths",
    "personalization",
    "learner_pages",
]

MIDDLEWARE = [
    "co_project.middleware.RequestMetricsMiddleware",  # outermost: counts what the client gets
    "co_project.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Sends the policy a view asks for (the learner pages); SECURE_CSP is empty, so other
    # responses (the API, the admin, /docs) get no header from it.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "co_project.middleware.StaticFilesMiddleware",  # WhiteNoise, async-capable
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "co_project.urls"
WSGI_APPLICATION = "co_project.wsgi.application"
ASGI_APPLICATION = "co_project.asgi.application"

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

# --- database ---------------------------------------------------------------------------

DATABASES = {"default": env.db_url("CO_DB_URL", default=f"sqlite:///{VAR_DIR / 'co.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    if _db["NAME"] != ":memory:" and not Path(_db["NAME"]).is_absolute():
        _db["NAME"] = str(BASE_DIR / _db["NAME"])
    # WAL + IMMEDIATE transactions let the embedded single-machine mode take concurrent writers;
    # SQLite's default sync level makes every commit wait for the disk.
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
    )
    # A file on this machine: a request thread keeps its connection (nothing to go stale).
    _db["CONN_MAX_AGE"] = env.int("CO_DB_CONN_MAX_AGE", default=600)
else:
    # Persistent connections (checked before each request reuses one): a new PostgreSQL connection
    # costs a backend process start and authentication, several times a verdict's statements.
    _db["CONN_MAX_AGE"] = env.int("CO_DB_CONN_MAX_AGE", default=600)
    _db["CONN_HEALTH_CHECKS"] = True
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", env.int("CO_DB_CONNECT_TIMEOUT", default=5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads that run requests under ASGI (co_project/asgi.py): concurrent requests in one process,
# including submissions waiting for their verdict (CO_SUBMISSION_WAIT_SECONDS).
CO_ASGI_THREADS = env.int("CO_ASGI_THREADS", default=32)

# --- cache (throttles, problem-bank cache, stream counters) ------------------------------

REDIS_URL = env.str("CO_REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "co",
            # Redis down must not take the API down with it: a cache call then answers "nothing
            # cached" (and is logged); the throttle lets the request through, waits fall back to
            # the database, and the sweeper queues again what could not be queued.
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2, "IGNORE_EXCEPTIONS": True},
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "co"}}

# --- Celery -----------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CO_CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Without a broker the queue is in-process (eager); an eager call still acquires a producer, so
# point it at the in-memory transport rather than a default AMQP host that does not exist.
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CO_CELERY_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CO_CELERY_TIME_LIMIT", default=90)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes a worker's database connections around every task unless told to reuse them;
# a task then reuses its process's connection for this many tasks (0: a new one per task).
CELERY_DB_REUSE_MAX = env.int("CO_CELERY_DB_REUSE_MAX", default=1000) or None
# A pool process warms its grading up before it takes tasks (co_project/celery.py): allow it the time.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 30.0
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task (its worker died) after this many seconds; keep it
# above the longest task. The sweeper re-queues sooner (CO_SUBMISSION_STALE_SECONDS).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CO_CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TIMEZONE = "UTC"
# Grading has a queue per kind of work, so each worker pool can be sized and placed on hosts of
# its own (`celery -A co_project worker -Q grade-python`); submissions.services.submission_queue
# picks one from the submission. Sweeps and the other periodic tasks use the default queue. A
# worker started without -Q consumes every queue declared here.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CO_GRADING_QUEUES = {
    "python": "grade-python",
    "javascript": "grade-javascript",
    "math": "grade-math",
    "systems": "grade-systems",
}
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, *CO_GRADING_QUEUES.values())]
# A misspelt `-Q` stops the worker instead of consuming a queue nothing is ever sent to.
CELERY_TASK_CREATE_MISSING_QUEUES = False

# --- authentication ---------------------------------------------------------------------


def _pem_setting(name: str, default_path: Path | None) -> str | None:
    """A PEM given inline, or a path to a PEM file (read lazily by the authentication class)."""
    value = env.str(name, default="")
    if value:
        return value.replace("\\n", "\n")
    return str(default_path) if default_path else None


CO_JWT_PUBLIC_KEY = _pem_setting("CO_JWT_PUBLIC_KEY", None if IS_PRODUCTION else VAR_DIR / "jwt-dev-public.pem")
if IS_PRODUCTION and not CO_JWT_PUBLIC_KEY:
    raise ImproperlyConfigured(
        "CO_JWT_PUBLIC_KEY is not set. Set it to the upstream issuer's RS256 public key (PEM, or a "
        "path to a PEM file) in production, or set CO_ENV=development for a local run."
    )
# The private key only exists in development: `issue_token` refuses without it.
CO_JWT_PRIVATE_KEY = _pem_setting("CO_JWT_PRIVATE_KEY", None if IS_PRODUCTION else VAR_DIR / "jwt-dev-private.pem")
CO_JWT_ISSUER = env.str("CO_JWT_ISSUER", default="https://api.scimigo.com")
CO_JWT_AUDIENCE = env.str("CO_JWT_AUDIENCE", default="") or None
CO_JWT_LEEWAY_SECONDS = env.int("CO_JWT_LEEWAY_SECONDS", default=30)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API --------------------------------------------------------------------------------

CO_RATE_LIMIT = env.str("CO_RATE_LIMIT", default="60/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["co_project.authentication.LearnerJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["co_project.authentication.IsLearner"],
    "DEFAULT_THROTTLE_CLASSES": ["co_project.throttles.LearnerRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_METADATA_CLASS": "co_project.metadata.ApiMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "co_project.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Curriculum Orchestrator API",
    "DESCRIPTION": (
        "Tracks, problems, sessions, submissions, tutoring and the learner model of the "
        "learning platform. Every `/v1/` call needs `Authorization: Bearer <JWT>` (RS256, issued "
        "by the platform's main API). Errors always use the envelope "
        '`{"error": {"code", "message", "fields"}, "request_id"}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The one PATCH (a session action) is not a partial update: its `action` is required.
    "COMPONENT_SPLIT_PATCH": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "co_project.openapi.require_request_bodies"],
    "ENUM_NAME_OVERRIDES": {
        "SubmissionKindEnum": "submissions.models.SubmissionKind",
        "RecommendationKindEnum": "personalization.recommendation.RecommendationKind",
        "SubjectEnum": "tracks.choices.Subject",
        "ModeEnum": "sessions_app.choices.SessionMode",
        "StudyPathStatusEnum": "study_paths.models.StudyPathStatus",
        "StudyPathChangeStatusEnum": ["active", "paused", "archived"],
        "StudyTaskStatusEnum": "study_paths.models.TaskStatus",
        "StudyTaskKindEnum": "study_paths.models.TaskKind",
        "ProblemResultStatusEnum": "submissions.models.ProblemResultStatus",
        "GradedVerdictEnum": ["passed", "failed", "timeout"],
        # One-value enums of the per-subject and per-mode request shapes (oneOf variants).
        "CodingSubjectEnum": ["coding"],
        "MathSubjectEnum": ["math"],
        "SystemsSubjectEnum": ["systems"],
        "SubmitOnlyKindEnum": ["submit"],
        "PracticeModeEnum": ["practice"],
        "TrackModeEnum": ["track"],
        "MockModeEnum": ["mock"],
    },
}

CORS_ALLOWED_ORIGINS = env.list("CO_CORS_ALLOWED_ORIGINS", default=["https://coding.scimigo.com", "https://app.scimigo.com"])
CORS_URLS_REGEX = r"^/(v1|health)(/.*)?$"
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
]

# --- external services --------------------------------------------------------------------

CO_EVAL_BASE = env.str("CO_EVAL_BASE", default="") or None
CO_PROBLEM_BANK_BASE = env.str("CO_PROBLEM_BANK_BASE", default="") or None
CO_PROBLEM_BANK_TOKEN = env.str("CO_PROBLEM_BANK_TOKEN", default="") or None
CO_PROBLEM_BANK_TIMEOUT_SECONDS = env.float("CO_PROBLEM_BANK_TIMEOUT_SECONDS", default=3.0)
CO_PROBLEM_BANK_RETRIES = env.int("CO_PROBLEM_BANK_RETRIES", default=2)
CO_PROBLEM_BANK_CACHE_SECONDS = env.int("CO_PROBLEM_BANK_CACHE_SECONDS", default=300)
CO_TUTOR_BASE = env.str("CO_TUTOR_BASE", default="") or None
CO_TUTOR_MODEL = env.str("CO_TUTOR_MODEL", default="") or None
CO_TUTOR_API_KEY = env.str("CO_TUTOR_API_KEY", default="") or None
CO_SSE_MAX_STREAMS = env.int("CO_SSE_MAX_STREAMS", default=2)
# Bearer token of GET /metrics (Prometheus). Unset: no /metrics outside development. The
# multiprocess directory, CO_METRICS_DIR, is read by co_project/metrics.py itself.
CO_METRICS_TOKEN = env.str("CO_METRICS_TOKEN", default="") or None

# --- study-task export (GET /v1/study-tasks/export) ---------------------------------------------
# Exports per learner, on top of CO_RATE_LIMIT: each one reads the learner's whole history.
CO_EXPORT_RATE = env.str("CO_EXPORT_RATE", default="5/hour")
# Tasks read per chunk (three queries a chunk); memory holds one chunk at a time.
CO_EXPORT_CHUNK_SIZE = env.int("CO_EXPORT_CHUNK_SIZE", default=500)

# --- tutor (tutoring/: hint turns streamed over SSE) ---------------------------------------------
# Hint requests (POST /v1/tutor/messages) per learner, on top of CO_RATE_LIMIT.
CO_TUTOR_HINT_RATE = env.str("CO_TUTOR_HINT_RATE", default="20/min")
# A stream token is single-use and must be redeemed within this many seconds.
CO_TUTOR_STREAM_TOKEN_SECONDS = env.int("CO_TUTOR_STREAM_TOKEN_SECONDS", default=60)
# An SSE comment every interval; a stream's slot lease lasts one interval and is renewed every
# half interval, so a slot held by a crashed process is free again within one interval.
CO_TUTOR_HEARTBEAT_SECONDS = env.float("CO_TUTOR_HEARTBEAT_SECONDS", default=15.0)
# The built-in tutor streams its answer in chunks of a few words, this far apart.
CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS = env.float("CO_TUTOR_BUILTIN_CHUNK_DELAY_SECONDS", default=0.03)
# The LLM tutor: connect timeout, the longest wait for the next streamed chunk, the whole answer's
# bound, and its length. Past any of them the built-in tutor answers instead.
CO_TUTOR_CONNECT_TIMEOUT_SECONDS = env.float("CO_TUTOR_CONNECT_TIMEOUT_SECONDS", default=5.0)
CO_TUTOR_READ_TIMEOUT_SECONDS = env.float("CO_TUTOR_READ_TIMEOUT_SECONDS", default=20.0)
CO_TUTOR_TOTAL_TIMEOUT_SECONDS = env.float("CO_TUTOR_TOTAL_TIMEOUT_SECONDS", default=90.0)
CO_TUTOR_MAX_TOKENS = env.int("CO_TUTOR_MAX_TOKENS", default=400)

# --- evaluation -----------------------------------------------------------------------------

# How long POST /v1/submissions waits for the verdict before answering 202 {id, status: pending}.
CO_SUBMISSION_WAIT_SECONDS = env.float("CO_SUBMISSION_WAIT_SECONDS", default=5.0)
# A `running` submission whose evaluation started longer ago than this is presumed lost (worker
# killed) and may be claimed again; keep it above the task's hard time limit.
CO_SUBMISSION_STALE_SECONDS = env.int("CO_SUBMISSION_STALE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 30)
CO_SUBMISSION_REQUEUE_SECONDS = env.int("CO_SUBMISSION_REQUEUE_SECONDS", default=60)
CO_SUBMISSION_MAX_ATTEMPTS = env.int("CO_SUBMISSION_MAX_ATTEMPTS", default=3)
# Past this age a submission that has no verdict ends as `error` — never pending forever.
CO_SUBMISSION_DEADLINE_SECONDS = env.int("CO_SUBMISSION_DEADLINE_SECONDS", default=900)
CO_SUBMISSION_SWEEP_SECONDS = env.float("CO_SUBMISSION_SWEEP_SECONDS", default=30.0)
CO_EVAL_TIMEOUT_SECONDS = env.float("CO_EVAL_TIMEOUT_SECONDS", default=20.0)
CO_EVAL_RETRIES = env.int("CO_EVAL_RETRIES", default=3)
CO_EVAL_RETRY_BACKOFF_SECONDS = env.float("CO_EVAL_RETRY_BACKOFF_SECONDS", default=0.5)

# The embedded sandbox (grading/sandbox). "auto" picks bubblewrap, else unshare; a pinned
# level the machine cannot provide becomes "none", which production refuses (fails closed).
CO_SANDBOX_ISOLATION = env.str("CO_SANDBOX_ISOLATION", default="auto")
CO_SANDBOX_PYTHON = env.str("CO_SANDBOX_PYTHON", default="")
CO_SANDBOX_NODE = env.str("CO_SANDBOX_NODE", default="")
CO_SANDBOX_BWRAP = env.str("CO_SANDBOX_BWRAP", default="")
# Each run gets its own real unprivileged uid/gid, CO_SANDBOX_UID + slot for slot < POOL (a free
# slot is locked for the run's life), so RLIMIT_NPROC bounds one run: a fork bomb in one
# learner's run cannot stop another's. The range must not belong to anything else on the host.
CO_SANDBOX_UID = env.int("CO_SANDBOX_UID", default=200000)
CO_SANDBOX_GID = env.int("CO_SANDBOX_GID", default=200000)
CO_SANDBOX_UID_POOL = env.int("CO_SANDBOX_UID_POOL", default=32)
# How long a run waits for a free sandbox uid slot before its verdict is `error` ("the server is busy").
CO_SANDBOX_SLOT_WAIT_SECONDS = env.float("CO_SANDBOX_SLOT_WAIT_SECONDS", default=30.0)
# A cgroup per run (memory and tasks of the whole run, CPU of all its processes): "auto" where this
# process (root) may create them, "off" for rlimits alone.
CO_SANDBOX_CGROUPS = env.str("CO_SANDBOX_CGROUPS", default="auto")
# A delegated cgroup v2 directory for the run cgroups (default: this process's own cgroup).
CO_SANDBOX_CGROUP = env.str("CO_SANDBOX_CGROUP", default="")
CO_SANDBOX_MAX_PROCESSES = env.int("CO_SANDBOX_MAX_PROCESSES", default=64)
CO_SANDBOX_MAX_OPEN_FILES = env.int("CO_SANDBOX_MAX_OPEN_FILES", default=64)
CO_SANDBOX_MAX_FILE_BYTES = env.int("CO_SANDBOX_MAX_FILE_BYTES", default=8 * 1024 * 1024)
CO_SANDBOX_SCRATCH_BYTES = env.int("CO_SANDBOX_SCRATCH_BYTES", default=16 * 1024 * 1024)
CO_SANDBOX_STARTUP_MS = env.int("CO_SANDBOX_STARTUP_MS", default=3000)
# Pre-started sandboxes per language (and Node memory limit), per process, so a run does not
# wait for its sandbox to start (grading/sandbox/warm.py); twice as many for Python on the
# fork helper (a fork each); 0 starts every sandbox on demand.
CO_SANDBOX_WARM = env.int("CO_SANDBOX_WARM", default=2)
# A grading process (a Celery pool process; the serving process without a broker) warms its
# sandboxes up when it starts, for problems with this memory limit (the course-pack default).
CO_SANDBOX_WARM_UP_MEMORY_MB = env.int("CO_SANDBOX_WARM_UP_MEMORY_MB", default=256)
# Python runs fork from a clean pre-started helper (grading/sandbox/zygote.py) when this
# process is root: a fork and fresh namespaces instead of bubblewrap plus an interpreter start.
CO_SANDBOX_ZYGOTE = env.bool("CO_SANDBOX_ZYGOTE", default=True)

# Math answers: parsing, equivalence and form checks run in a killable worker process.
CO_MATH_TIME_LIMIT_SECONDS = env.float("CO_MATH_TIME_LIMIT_SECONDS", default=2.0)
# SymPy's simplify gets this long (at most half the time limit) to prove two answers equal;
# past it, agreement at random points of the real domain decides (the numeric fallback).
CO_MATH_SIMPLIFY_SECONDS = env.float("CO_MATH_SIMPLIFY_SECONDS", default=0.5)
CO_MATH_MEMORY_LIMIT_MB = env.int("CO_MATH_MEMORY_LIMIT_MB", default=1024)
CO_MATH_WORKER_START_SECONDS = env.float("CO_MATH_WORKER_START_SECONDS", default=30.0)
# SymPy worker processes per grading process, so concurrent math answers are checked at the same
# time and one that runs into its time limit holds up only itself. A Celery pool process grades
# one answer at a time and keeps the second as a started spare for when one is killed; 1 saves
# its memory.
CO_MATH_WORKERS = env.int("CO_MATH_WORKERS", default=2)
# One learner's submissions waiting for or under evaluation at once; the next is a 429 (0: no cap).
CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER = env.int("CO_MAX_CONCURRENT_EVALUATIONS_PER_LEARNER", default=2)
# Rubric grading with the LLM (when CO_TUTOR_BASE is set); the built-in grader is the fallback.
CO_TUTOR_GRADING_TIMEOUT_SECONDS = env.float("CO_TUTOR_GRADING_TIMEOUT_SECONDS", default=20.0)

# --- learner model (personalization, sessions) -------------------------------------------------


# Recommendation weights (seeds/001 §D): score = Σ weight × term, each term in [0, 1].
def _recommendation_weights(raw: str) -> dict[str, float]:
    """`weakness=0.35,novelty=0.25,...`: any subset of the four terms overrides the default."""
    weights = {"weakness": 0.35, "novelty": 0.25, "pacing": 0.30, "diversity": 0.10}
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        name, _, value = part.partition("=")
        try:
            if name.strip() not in weights:
                raise ValueError(name)
            weights[name.strip()] = float(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"CO_RECOMMENDATION_WEIGHTS: '{part}' is not term=number (terms: {', '.join(weights)})."
            ) from None
    return weights


CO_RECOMMENDATION_WEIGHTS = _recommendation_weights(env.str("CO_RECOMMENDATION_WEIGHTS", default=""))
# Mastery: how far one attempt moves the EMA (before the difficulty weighting), and how long a
# problem of each difficulty (1..5) should take before a pass counts as slow.
# Study paths: the planner version new paths are created with (study_paths.planner.PLANNERS);
# an existing path keeps the version it was created with.
CO_STUDY_PATH_ALGORITHM = env.str("CO_STUDY_PATH_ALGORITHM", default="v2")
CO_MASTERY_ALPHA = env.float("CO_MASTERY_ALPHA", default=0.35)
# A topic counts as mastered at this score (0–100); a track session ends when all its topics are.
CO_MASTERY_THRESHOLD = env.int("CO_MASTERY_THRESHOLD", default=80)
CO_EXPECTED_MINUTES = env.list("CO_EXPECTED_MINUTES", cast=int, default=[10, 15, 25, 35, 45])
# Mock interviews: default and allowed time box and problem count.
CO_MOCK_DEFAULT_MINUTES = env.int("CO_MOCK_DEFAULT_MINUTES", default=45)
CO_MOCK_MINUTES_RANGE = (1, 180)
CO_MOCK_DEFAULT_PROBLEMS = env.int("CO_MOCK_DEFAULT_PROBLEMS", default=2)
CO_MOCK_PROBLEMS_RANGE = (1, 5)
CO_MOCK_SWEEP_SECONDS = env.float("CO_MOCK_SWEEP_SECONDS", default=15.0)
CO_REVIEW_SURFACE_SECONDS = env.float("CO_REVIEW_SURFACE_SECONDS", default=300.0)
# Review scheduling: `buckets` (1 / 3 / 7 / 21 days, the seeds) or `fsrs` (FSRS-6, aiming at the
# desired retention below: the recall probability at which a review comes due).
CO_REVIEW_SCHEDULER = env.str("CO_REVIEW_SCHEDULER", default="buckets")
CO_REVIEW_TARGET_RETENTION = env.float("CO_REVIEW_TARGET_RETENTION", default=0.9)
if CO_REVIEW_SCHEDULER not in ("buckets", "fsrs"):
    raise ImproperlyConfigured(f"CO_REVIEW_SCHEDULER must be buckets or fsrs, not {CO_REVIEW_SCHEDULER!r}.")
if not 0.7 <= CO_REVIEW_TARGET_RETENTION <= 0.99:
    raise ImproperlyConfigured("CO_REVIEW_TARGET_RETENTION must be between 0.7 and 0.99.")
# How often due review items become `review` tasks on the learners' active study paths.
CO_REVIEW_TASKS_SECONDS = env.float("CO_REVIEW_TASKS_SECONDS", default=300.0)
# How often study tasks past their expiry are marked `expired` (study_paths.expire_tasks).
CO_STUDY_TASK_EXPIRY_SECONDS = env.float("CO_STUDY_TASK_EXPIRY_SECONDS", default=300.0)
# Peer comparison (GET /v1/study-paths/{id}/progress?compare=peers): a module shows percentiles
# only once this many learners of the track have a graded attempt in it; the distributions are
# recomputed by study_paths.peer_distributions_refresh this often.
CO_PEER_MIN_COHORT = env.int("CO_PEER_MIN_COHORT", default=20)
CO_PEER_REFRESH_SECONDS = env.float("CO_PEER_REFRESH_SECONDS", default=3600.0)
# How often the open-task and review-backlog gauges of /metrics are counted.
CO_LEARNING_GAUGES_SECONDS = env.float("CO_LEARNING_GAUGES_SECONDS", default=60.0)

# Without a broker the serving process runs CELERY_BEAT_SCHEDULE itself (co_project/beat.py);
# not in the test process, whose tests run the periodic tasks they mean to.
CO_IN_PROCESS_BEAT = env.bool("CO_IN_PROCESS_BEAT", default=CO_ENV != "test")
CELERY_BEAT_SCHEDULE = {
    "submissions-sweep": {"task": "submissions.sweep", "schedule": CO_SUBMISSION_SWEEP_SECONDS},
    "sessions-finish-expired-mocks": {"task": "sessions.finish_expired_mocks", "schedule": CO_MOCK_SWEEP_SECONDS},
    "personalization-surface-due-reviews": {"task": "personalization.surface_due_reviews", "schedule": CO_REVIEW_SURFACE_SECONDS},
    "study-paths-expire-tasks": {"task": "study_paths.expire_tasks", "schedule": CO_STUDY_TASK_EXPIRY_SECONDS},
    "study-paths-peer-distributions": {"task": "study_paths.peer_distributions_refresh", "schedule": CO_PEER_REFRESH_SECONDS},
    "study-paths-learning-gauges": {"task": "study_paths.learning_gauges_refresh", "schedule": CO_LEARNING_GAUGES_SECONDS},
    "study-paths-review-tasks": {"task": "study_paths.review_tasks_create", "schedule": CO_REVIEW_TASKS_SECONDS},
}

# Course packs shipped with the repository, imported by `manage.py seed`.
CO_SEED_COURSEPACK_DIR = BASE_DIR / "coursepacks"
# Hidden-test generators run in the learner sandbox at validation and publish time: the CPU
# time each generated case may take (at most 60 s) and the memory of a generator's run.
CO_GENERATOR_TIME_LIMIT_SECONDS = env.float("CO_GENERATOR_TIME_LIMIT_SECONDS", default=10.0)
CO_GENERATOR_MEMORY_LIMIT_MB = env.int("CO_GENERATOR_MEMORY_LIMIT_MB", default=1024)

# --- files ------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if not IS_PRODUCTION
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development and tests serve static files straight from the apps (no collectstatic step).
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = not IS_PRODUCTION
MEDIA_ROOT = env.path("CO_MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "media/"

# --- uploads and request bodies -----------------------------------------------------------
# Course packs are the only files anyone uploads. A pack is refused past its size while it
# arrives (co_project.uploads, first of the upload handlers), so a larger file is never stored
# or read whole; a pack's YAML is refused past a node count (aliases, which expand, never).
CO_COURSEPACK_MAX_BYTES = env.int("CO_COURSEPACK_MAX_BYTES", default=5 * 1024 * 1024)
CO_COURSEPACK_MAX_YAML_NODES = env.int("CO_COURSEPACK_MAX_YAML_NODES", default=200_000)
# Form fields and JSON bodies held in memory (request.body, request.POST); larger is a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("CO_REQUEST_DATA_MAX_BYTES", default=5 * 1024 * 1024)
# Every request body, counted while the ASGI server hands it over (co_project/asgi.py): past
# this the request is answered 413 before Django spools the rest to a temporary file.
CO_REQUEST_MAX_BYTES = env.int(
    "CO_REQUEST_MAX_BYTES", default=max(CO_COURSEPACK_MAX_BYTES, DATA_UPLOAD_MAX_MEMORY_SIZE) + 256 * 1024
)
# An uploaded pack within its limit stays in memory; nothing larger gets this far.
FILE_UPLOAD_MAX_MEMORY_SIZE = CO_COURSEPACK_MAX_BYTES
FILE_UPLOAD_HANDLERS = [
    "co_project.uploads.BoundedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- i18n -------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- security in production ---------------------------------------------------------------

if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env.bool("CO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("CO_SECURE_COOKIES", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_CSP: dict[str, list[str]] = {}

# --- learner pages -------------------------------------------------------------------------
# Where the pages send a learner who is not signed in outside development: the platform's login,
# which redirects back to /learn/signed-in#token=<JWT> (see the README). Empty: the sign-in page
# only explains the hand-off.
CO_LEARNER_SIGN_IN_URL = env.str("CO_LEARNER_SIGN_IN_URL", default="")

# --- logging (structured, one JSON object per line, with the request id) ------------------

CO_LOG_LEVEL = env.str("CO_LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "co_project.middleware.RequestIdLogFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": CO_LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR", "propagate": True},
        "django.db.backends": {"level": "WARNING", "propagate": True},
        # Celery's line per task received and per task succeeded (each submission's, each round of
        # the periodic tasks) only at DEBUG: the task's own services log what it did, with the
        # request id, and /metrics counts every task. Failures are logged at any level.
        **{
            name: {"level": "DEBUG" if CO_LOG_LEVEL == "DEBUG" else "WARNING", "propagate": True}
            for name in ("celery.app.trace", "celery.worker.strategy")
        },
    },
}
