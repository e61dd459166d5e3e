"""Journey's one settings module.

Everything comes from the environment. With nothing set, Journey runs on a laptop with
no services at all: SQLite, a Celery broker on a SQLite file, media on local disk.
`JOURNEY_ENV=production` switches to explicit production values, and the system check in
`config/checks.py` refuses to start without a secret key, allowed hosts and PostgreSQL.
"""

import json
from pathlib import Path

from config.env import (
    SQLITE_OPTIONS,
    broker_url,
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    url_origin,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("JOURNEY_VAR_DIR", str(BASE_DIR / "var")))

JOURNEY_ENV = env_str("JOURNEY_ENV", "development")
PRODUCTION = JOURNEY_ENV == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
# The development key is public on purpose: it only ever signs a laptop's sessions.
SECRET_KEY = env_str("SECRET_KEY") or ("" if PRODUCTION else "journey-development-only-key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "config.apps.ConfigAppConfig",
    "courses",
    "quizzes",
    "mlworker",
    "accounts",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Content-Security-Policy (config.middleware): the site's own scripts, styles and images only; no
# inline script, style or handler, no eval, no plugins, no framing, forms post only to the site.
JOURNEY_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],  # the form's data-set samples are inline PNGs
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# Database: SQLite by default, PostgreSQL through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "journey.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
            # A file, not memory, so that worker processes started by tests see the test data.
            "TEST": {"NAME": VAR_DIR / "test-journey.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's own backend, behind the log-in limit: every log-in (the site's, the admin's) goes through it.
AUTHENTICATION_BACKENDS = ["accounts.backends.LoginLimitBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
# Log-in attempts: this many wrong passwords in the window pause the log-in (accounts.services):
# for one username from one address, for one username from any address, from one address for any username.
JOURNEY_LOGIN_MAX_FAILURES = env_int("JOURNEY_LOGIN_MAX_FAILURES", 5, minimum=1)
JOURNEY_LOGIN_MAX_ACCOUNT_FAILURES = env_int("JOURNEY_LOGIN_MAX_ACCOUNT_FAILURES", 20, minimum=1)
JOURNEY_LOGIN_MAX_ADDRESS_FAILURES = env_int("JOURNEY_LOGIN_MAX_ADDRESS_FAILURES", 100, minimum=1)
JOURNEY_LOGIN_WINDOW_MINUTES = env_int("JOURNEY_LOGIN_WINDOW_MINUTES", 15, minimum=1)
# Reverse proxies in front of the site that append to X-Forwarded-For (nginx, a load balancer):
# the rate limit counts the address the outermost trusted proxy saw. 0 trusts no header.
JOURNEY_TRUSTED_PROXIES = env_int("JOURNEY_TRUSTED_PROXIES", 0, minimum=0)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Stored files (uploads, data-set images, exported models, top-loss and prediction images) go through
# Django's storage API only. Local disk (MEDIA_ROOT) on a laptop or a one-host install; with
# JOURNEY_STORAGE=s3 a private bucket in an S3-compatible store, so that workers on other hosts share
# nothing with the web but the database, the broker and the store. Read with the keys, or by a browser
# through the views that check who asks (JOURNEY_SIGNED_LINKS: redirected to a short-lived signed link).
JOURNEY_STORAGE = env_choice("JOURNEY_STORAGE", "local", ("local", "s3"))
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None  # unset: Amazon S3 itself
AWS_S3_PUBLIC_ENDPOINT_URL = env_str("AWS_S3_PUBLIC_ENDPOINT_URL") or None  # signed links' host; unset: the endpoint
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME", "journey")
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID")
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY")
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "us-east-1")
AWS_S3_ADDRESSING_STYLE = env_choice("AWS_S3_ADDRESSING_STYLE", "path", ("path", "virtual", "auto"))
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_QUERYSTRING_AUTH = True  # every link to an object is signed; the bucket answers no one else
AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 300, minimum=10)
AWS_DEFAULT_ACL = None  # the bucket's own: private
AWS_S3_MAX_MEMORY_SIZE = 16 * 2**20  # a file read from the store spills to a temporary file past this
JOURNEY_SIGNED_LINKS = env_bool("JOURNEY_SIGNED_LINKS", False)
if JOURNEY_STORAGE == "s3" and JOURNEY_SIGNED_LINKS:
    # An image's view answers with a redirect to the store: pages may show images from there.
    JOURNEY_CSP["img-src"].append(
        url_origin(
            AWS_S3_PUBLIC_ENDPOINT_URL or AWS_S3_ENDPOINT_URL or f"https://s3.{AWS_S3_REGION_NAME}.amazonaws.com"
        )
    )
STORAGES = {
    "default": {
        "BACKEND": (
            "config.storage.PrivateS3Storage"
            if JOURNEY_STORAGE == "s3"
            else "django.core.files.storage.FileSystemStorage"
        )
    },
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Journey <journey@localhost>")

# Production hardening; `manage.py check --deploy` passes with JOURNEY_ENV=production.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", [])

# Celery. The broker carries task ids only; the database is the source of truth.
CELERY_BROKER_URL = broker_url(env_str("CELERY_BROKER_URL", f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"))
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {
    "mlworker.tasks.train": {"queue": "gpu"},
    # Predictions have their own queue and worker, so that they answer while a training runs.
    "mlworker.tasks.predict": {"queue": "predict"},
    # Checking a student's zip decodes every image in it: its own queue and worker, so that a slow
    # zip never holds up free-text grading or housekeeping on `cpu`.
    "mlworker.tasks.dataset_check": {"queue": "uploads"},
    "mlworker.tasks.*": {"queue": "cpu"},
    "quizzes.tasks.*": {"queue": "cpu"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A pool process loads its queue's models before it reports ready (config/warmup.py): the grader
# takes a few seconds, more on a busy machine, past Celery's 4 s default.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must fail fast when the broker is down: the web request answers "queue
# unavailable" and housekeeping dispatches the saved job later.
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 3, minimum=1)
CELERY_TASK_PUBLISH_RETRY = False

# Jobs: limits, quotas and the housekeeping clock.
JOURNEY_MAX_JOB_SECONDS = env_int("JOURNEY_MAX_JOB_SECONDS", 3600, minimum=10)
JOURNEY_HEARTBEAT_SECONDS = env_int("JOURNEY_HEARTBEAT_SECONDS", 5, minimum=1)
JOURNEY_HEARTBEAT_TIMEOUT = env_int("JOURNEY_HEARTBEAT_TIMEOUT", 60, minimum=2)
JOURNEY_REDISPATCH_AFTER = env_int("JOURNEY_REDISPATCH_AFTER", 600, minimum=1)
JOURNEY_HOUSEKEEPING_SECONDS = env_int("JOURNEY_HOUSEKEEPING_SECONDS", 30, minimum=1)
JOURNEY_JOB_MAX_ATTEMPTS = env_int("JOURNEY_JOB_MAX_ATTEMPTS", 2, minimum=1)
JOURNEY_MAX_ACTIVE_JOBS = env_int("JOURNEY_MAX_ACTIVE_JOBS", 2, minimum=1)
JOURNEY_MAX_EPOCHS = env_int("JOURNEY_MAX_EPOCHS", 10, minimum=1)
JOURNEY_MAX_IMAGE_SIZE = env_int("JOURNEY_MAX_IMAGE_SIZE", 320, minimum=32)
JOURNEY_MAX_BATCH_SIZE = env_int("JOURNEY_MAX_BATCH_SIZE", 256, minimum=2)
JOURNEY_MAX_BATCH_IMAGES = env_int("JOURNEY_MAX_BATCH_IMAGES", 50, minimum=1)
JOURNEY_MAX_DATASET_UPLOAD_MB = env_int("JOURNEY_MAX_DATASET_UPLOAD_MB", 200, minimum=1)
JOURNEY_DATASET_MAX_FILES = env_int("JOURNEY_DATASET_MAX_FILES", 2000, minimum=10)
# What each user may keep in file storage: their data sets' images and their predictions' images
# (stored at the largest image size training uses, JOURNEY_MAX_IMAGE_SIZE, so this holds thousands).
JOURNEY_STORAGE_QUOTA_MB = env_int("JOURNEY_STORAGE_QUOTA_MB", 500, minimum=1)
JOURNEY_PREDICT_CACHE_MODELS = env_int("JOURNEY_PREDICT_CACHE_MODELS", 4, minimum=1)
JOURNEY_PREDICT_CACHE_MB = env_int("JOURNEY_PREDICT_CACHE_MB", 1024, minimum=1)
# Each worker says it is alive this often; the jobs pages count it online until three beats are missed.
JOURNEY_WORKER_BEAT_SECONDS = env_int("JOURNEY_WORKER_BEAT_SECONDS", 10, minimum=1)
# A prediction, or the check of an uploaded zip, not finished this long after it was saved is
# failed by housekeeping with a message (its worker died or its message was lost). Both sit
# above the tasks' own time limits (5 and 30 minutes).
JOURNEY_PREDICTION_TIMEOUT = env_int("JOURNEY_PREDICTION_TIMEOUT", 600, minimum=60)
JOURNEY_DATASET_CHECK_TIMEOUT = env_int("JOURNEY_DATASET_CHECK_TIMEOUT", 3600, minimum=60)
# Each worker's own disk, never shared: the images it prepares from the installed data packages, each
# job's scratch folder, and its cache of what it fetched from file storage (models, data-set images),
# least recently used out first past JOURNEY_CACHE_MB.
JOURNEY_DATA_DIR = Path(env_str("JOURNEY_DATA_DIR", str(VAR_DIR / "data")))
JOURNEY_WORK_DIR = Path(env_str("JOURNEY_WORK_DIR", str(VAR_DIR / "work")))
JOURNEY_CACHE_DIR = Path(env_str("JOURNEY_CACHE_DIR", str(VAR_DIR / "cache")))
JOURNEY_CACHE_MB = env_int("JOURNEY_CACHE_MB", 2048, minimum=1)
JOURNEY_NEW_CARDS_PER_DAY = env_int("JOURNEY_NEW_CARDS_PER_DAY", 10, minimum=0)  # glossary flashcards

# Quizzes.
JOURNEY_CHAPTER_QUIZ_SIZE = env_int("JOURNEY_CHAPTER_QUIZ_SIZE", 15, minimum=1)
# Which test attempt gives a quiz's grade: the best one or the latest one.
JOURNEY_QUIZ_GRADING = env_choice("JOURNEY_QUIZ_GRADING", "best", ("best", "last"))
# A free-text grade the grader is less sure of than this goes to an instructor. The default is the
# bar that training read off the risk/coverage curve on writers the grader had not seen
# (quizzes/grader/calibration.json, written by bench/grading/train.py); lower sends fewer answers to
# review and lets more wrong grades through.
JOURNEY_REVIEW_CONFIDENCE = env_float(
    "JOURNEY_REVIEW_CONFIDENCE",
    json.loads((BASE_DIR / "quizzes" / "grader" / "calibration.json").read_text())["decision"]["review_below"],
    minimum=0.0,
    maximum=1.0,
)
# Every free-text test answer goes to an instructor, with the grader's grade as a suggestion
# (for a course's first weeks, while instructors learn how far to trust the grader).
JOURNEY_REVIEW_EVERY_ANSWER = env_bool("JOURNEY_REVIEW_EVERY_ANSWER", False)
# A timed test allows this many seconds per question, plus a grace for saves still in flight.
JOURNEY_TEST_SECONDS_PER_QUESTION = env_int("JOURNEY_TEST_SECONDS_PER_QUESTION", 90, minimum=5)
JOURNEY_TEST_GRACE_SECONDS = env_int("JOURNEY_TEST_GRACE_SECONDS", 5, minimum=0)
JOURNEY_ANSWER_MAX_CHARS = env_int("JOURNEY_ANSWER_MAX_CHARS", 4000, minimum=100)
# Torch threads in each process of the `cpu` worker, which grades free text: its concurrency gives the
# parallelism, more threads per process only contend for the same cores (0: torch's own default).
JOURNEY_GRADER_THREADS = env_int("JOURNEY_GRADER_THREADS", 1, minimum=0)
# A free-text answer still waiting for the grader after this long is queued again.
JOURNEY_GRADING_REDISPATCH_AFTER = env_int("JOURNEY_GRADING_REDISPATCH_AFTER", 300, minimum=10)
JOURNEY_QUIZ_HOUSEKEEPING_SECONDS = env_int("JOURNEY_QUIZ_HOUSEKEEPING_SECONDS", 60, minimum=1)

# The time limit sits above the longest job the runner allows; Redis must not hand a
# running job's message to a second worker, so its visibility timeout sits above both.
CELERY_TASK_TIME_LIMIT = JOURNEY_MAX_JOB_SECONDS + 300
CELERY_TASK_SOFT_TIME_LIMIT = JOURNEY_MAX_JOB_SECONDS + 240
# Only Redis takes these options (the SQLAlchemy transport hands its options to create_engine).
# The retry options bound how long a publish waits for a broker that is down.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "visibility_timeout": JOURNEY_MAX_JOB_SECONDS + 600,
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    }
    if CELERY_BROKER_URL.startswith("redis")
    else {}
)
# A prefix on every key the site puts in Redis, so that two sites (or a load test beside a test
# suite) can share one Redis database without taking each other's messages.
JOURNEY_BROKER_KEY_PREFIX = env_str("JOURNEY_BROKER_KEY_PREFIX")
if JOURNEY_BROKER_KEY_PREFIX and CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = JOURNEY_BROKER_KEY_PREFIX
CELERY_BEAT_SCHEDULE = {
    "jobs-housekeeping": {
        "task": "mlworker.tasks.housekeeping",
        "schedule": float(JOURNEY_HOUSEKEEPING_SECONDS),
    },
    "quizzes-housekeeping": {
        "task": "quizzes.tasks.housekeeping",
        "schedule": float(JOURNEY_QUIZ_HOUSEKEEPING_SECONDS),
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"job": {"()": "config.logging.JobIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "filters": ["job"],
        },
    },
    "root": {"handlers": ["stdout"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": env_str("JOURNEY_CELERY_LOG_LEVEL", "INFO")},
    },
}
