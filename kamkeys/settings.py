"""The one settings module.

Nothing set in the environment gives the *embedded default*: SQLite under ``var/``, Celery tasks run
eagerly, emails on the console, a development KEK file, DEBUG for localhost only.
``KAMKEYS_ENV=production`` turns every default into a demand: missing secrets stop start-up with
one clear line (see ``kamkeys.config``).
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from csp.constants import NONE, SELF

from kamkeys.config import (
    ConfigError,
    env_bool,
    env_int,
    env_list,
    fail,
    parse_database_url,
    parse_site_url,
    require_reachable_redis,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KAMKEYS_VAR_DIR", BASE_DIR / "var"))

ENV = os.environ.get("KAMKEYS_ENV", "embedded").strip().lower()
if ENV not in {"embedded", "production"}:
    fail(f"KAMKEYS_ENV must be 'embedded' or 'production', not {ENV!r}")
PRODUCTION = ENV == "production"
EMBEDDED = not PRODUCTION

# Image build: `KAMKEYS_ENV=production KAMKEYS_BUILD_STEP=1 python manage.py collectstatic` runs
# with the production static-files storage (hashed names) but without the secrets, which an
# image must not contain: throwaway values stand in for them, in this process only. Anything
# but collectstatic refuses to run in this mode, so a leftover flag cannot start a server.
BUILD_STEP = os.environ.get("KAMKEYS_BUILD_STEP", "").strip().lower() in {"1", "true", "yes"}
if BUILD_STEP:
    if Path(sys.argv[0]).name != "manage.py" or sys.argv[1:2] != ["collectstatic"]:
        fail("KAMKEYS_BUILD_STEP=1 is only for 'manage.py collectstatic' while building the image")
    for name, value in {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "build.invalid",
        "DATABASE_URL": "postgres://build@build.invalid:5432/build",  # never connected
        "REDIS_URL": "redis://build.invalid:6379/0",  # never connected
        "KAMKEYS_SKIP_REDIS_CHECK": "true",
        "KAMKEYS_KEKS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "KAMKEYS_KEK_FILE": "",
        "EMAIL_HOST": "build.invalid",
        "KAMKEYS_SITE_URL": "https://build.invalid",
    }.items():
        os.environ[name] = value

try:
    # --- core -------------------------------------------------------------------------------
    if PRODUCTION:
        SECRET_KEY = os.environ.get("SECRET_KEY", "")
        if len(SECRET_KEY) < 50:
            fail("SECRET_KEY must be set to at least 50 random characters in production")
        ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
        if not ALLOWED_HOSTS:
            fail("ALLOWED_HOSTS must be set in production (comma-separated host names)")
        DEBUG = False
    else:
        SECRET_KEY = os.environ.get(
            "SECRET_KEY", "embedded-default-not-secret-only-for-localhost-development-0123456789"
        )
        ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "testserver",
        ]
        DEBUG = env_bool("DEBUG", default=True)

    # --- database -----------------------------------------------------------------------------
    DATABASE_URL = os.environ.get("DATABASE_URL", "")
    if DATABASE_URL:
        DATABASES: dict[str, Any] = {"default": parse_database_url(DATABASE_URL)}
    elif PRODUCTION:
        fail("DATABASE_URL must be set in production (postgres://user:password@host:5432/name)")
    else:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": VAR_DIR / "kamkeys.sqlite3",
                # IMMEDIATE: a transaction takes the write lock when it begins, so a second
                # one (a form sent twice) waits up to the timeout for it; a deferred one that
                # read first failed at once with "database is locked" (a 500).
                "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            }
        }

    # --- redis: Celery broker and cache ---------------------------------------------------------
    REDIS_URL = os.environ.get("REDIS_URL", "")
    if PRODUCTION and not REDIS_URL:
        fail("REDIS_URL must be set in production (redis://host:6379/0)")
    if PRODUCTION and not env_bool("KAMKEYS_SKIP_REDIS_CHECK", default=False):
        require_reachable_redis(REDIS_URL)
    if REDIS_URL:
        CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": os.environ.get("KAMKEYS_CACHE_PREFIX", "kamkeys"),
                # A stopped Redis fails fast (a 503 page, kamkeys.outage), never hangs a page.
                "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 5},
            }
        }
    else:
        CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

    # --- key-encryption keys ------------------------------------------------------------------
    # A key ring "1:<base64 32 bytes>,2:<...>" in KAMKEYS_KEKS, or a file with one such entry per
    # line in KAMKEYS_KEK_FILE. The embedded default creates var/dev.kek (mode 0600) on first use.
    KAMKEYS_KEKS = os.environ.get("KAMKEYS_KEKS", "")
    KAMKEYS_KEK_FILE = os.environ.get("KAMKEYS_KEK_FILE", "")
    if PRODUCTION:
        if not KAMKEYS_KEKS and not KAMKEYS_KEK_FILE:
            fail("a KEK is required in production: set KAMKEYS_KEKS or KAMKEYS_KEK_FILE")
        if KAMKEYS_KEK_FILE and not Path(KAMKEYS_KEK_FILE).is_file():
            fail(f"KAMKEYS_KEK_FILE points to {KAMKEYS_KEK_FILE!r}, which is not a readable file")
        KAMKEYS_CREATE_DEV_KEK = False
    else:
        if not KAMKEYS_KEKS and not KAMKEYS_KEK_FILE:
            KAMKEYS_KEK_FILE = str(VAR_DIR / "dev.kek")
        KAMKEYS_CREATE_DEV_KEK = True
    # Device codes are stored as keyed hashes; the pepper is derived from SECRET_KEY unless set.
    KAMKEYS_DEVICE_CODE_PEPPER = os.environ.get("KAMKEYS_DEVICE_CODE_PEPPER", "")

    # --- email --------------------------------------------------------------------------------
    EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
    DEFAULT_FROM_EMAIL = os.environ.get(
        "DEFAULT_FROM_EMAIL", "kamkeys <no-reply@kamkeys.localhost>"
    )
    SERVER_EMAIL = DEFAULT_FROM_EMAIL
    KAMKEYS_STAFF_EMAILS = env_list("KAMKEYS_STAFF_EMAILS")
    if EMAIL_HOST:
        EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        EMAIL_PORT = env_int("EMAIL_PORT", 25)
        EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
        EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
        EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
        EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
        EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
    elif PRODUCTION:
        fail("EMAIL_HOST must be set in production (the SMTP server that sends activation mail)")
    else:
        EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    # Outbox: how often and how long an unsent email is retried.
    KAMKEYS_OUTBOX_MAX_ATTEMPTS = env_int("KAMKEYS_OUTBOX_MAX_ATTEMPTS", 8)
    KAMKEYS_OUTBOX_BACKOFF_SECONDS = env_int("KAMKEYS_OUTBOX_BACKOFF_SECONDS", 30)
    KAMKEYS_OUTBOX_CLAIM_SECONDS = env_int("KAMKEYS_OUTBOX_CLAIM_SECONDS", 300)
    KAMKEYS_OUTBOX_RESEND_EVERY_SECONDS = env_int("KAMKEYS_OUTBOX_RESEND_EVERY_SECONDS", 60)
    # A worker writes a heartbeat this often (beat); /healthz reports its age.
    KAMKEYS_HEARTBEAT_SECONDS = env_int("KAMKEYS_HEARTBEAT_SECONDS", 30)
    # The public origin of every link in an email (kamkeys.links). Required in production, so a
    # spoofed Host header can never put an attacker's host in a password-reset link; unset in
    # the embedded default, where links follow the request's host (else http://localhost:8000).
    KAMKEYS_SITE_URL = os.environ.get("KAMKEYS_SITE_URL", "").strip()
    if KAMKEYS_SITE_URL:
        KAMKEYS_SITE_URL = parse_site_url(KAMKEYS_SITE_URL, require_https=PRODUCTION)
    elif PRODUCTION:
        fail("KAMKEYS_SITE_URL must be set in production (https://keys.example.com, no path)")

    # --- celery -------------------------------------------------------------------------------
    CELERY_BROKER_URL = REDIS_URL or "memory://"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
    CELERY_TASK_EAGER_PROPAGATES = False
    CELERY_TASK_ACKS_LATE = True
    CELERY_TASK_REJECT_ON_WORKER_LOST = True
    CELERY_WORKER_PREFETCH_MULTIPLIER = 1
    CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
    CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "socket_connect_timeout": 2}
    CELERY_BEAT_SCHEDULE = {
        "resend-pending-email": {
            "task": "kamkeys.tasks.resend_pending_email",
            "schedule": timedelta(seconds=KAMKEYS_OUTBOX_RESEND_EVERY_SECONDS),
        },
        "worker-heartbeat": {
            "task": "kamkeys.tasks.worker_heartbeat",
            "schedule": timedelta(seconds=KAMKEYS_HEARTBEAT_SECONDS),
            # A heartbeat queued while no worker ran is stale: it must not pose as fresh.
            "options": {"expires": KAMKEYS_HEARTBEAT_SECONDS},
        },
    }
except ConfigError as exc:  # pragma: no cover - exercised through subprocess tests
    fail(str(exc))

# --- apps -------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "kamkeys.apps.KamkeysAdminConfig",  # django.contrib.admin on our AdminSite
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_tables2",
    "django_filters",
    "kamkeys",
    "accounts",
    "audit",
    "keyvault",
    "devices",
    "keyfiles",
    "readrights",
    "api",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    # /healthz answers here, before host validation and the HTTPS redirect (kamkeys.health).
    "kamkeys.health.HealthzMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the browser's Accept-Language, or the one chosen in the header (a cookie).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # A logged-in user's stored choice wins over the browser's (accounts.middleware).
    "accounts.middleware.UserLanguageMiddleware",
    "kamkeys.middleware.SuperUserIdleTimeoutMiddleware",
    # Before any view or CSRF check reads request.POST (kamkeys.middleware).
    "kamkeys.middleware.FormEncodingMiddleware",
]

if PRODUCTION:  # the embedded default serves static files through runserver
    MIDDLEWARE.insert(2, "whitenoise.middleware.WhiteNoiseMiddleware")  # after SecurityMiddleware

ROOT_URLCONF = "kamkeys.urls"
WSGI_APPLICATION = "kamkeys.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "kamkeys.context_processors.navigation",
            ],
            # {% url %} for names without arguments, reversed once per process.
            "builtins": ["kamkeys.template_urls"],
        },
    }
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # allauth's backend, asking accounts.selectors.user_for_verified_email (issue 12 §3).
    "accounts.adapter.VerifiedEmailAuthenticationBackend",
]

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# The password policy (accounts/validators.py): each failing rule is named in the form's error.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "accounts.validators.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "accounts.validators.NotContainingUserInfoValidator"},
    {"NAME": "accounts.validators.CharacterClassesValidator"},
    {"NAME": "accounts.validators.ZxcvbnStrengthValidator", "OPTIONS": {"min_score": 3}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# English is the source language; Danish is complete (locale/da). The .mo files are committed,
# so the image and a clean clone need no gettext tools to run (tests/test_translations.py checks
# they match the .po files).
LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en-gb", "English"), ("da", "Dansk")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "kamkeys_language"
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "devices:list"
LOGOUT_REDIRECT_URL = "account_login"

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_SAVE_EVERY_REQUEST = True  # the age above is an idle timeout, not a fixed lifetime
# Database sessions that skip rewriting an unchanged session more than once a minute (the idle
# timeout ends up to a minute early, never late).
SESSION_ENGINE = "kamkeys.sessions"
KAMKEYS_SUPERUSER_IDLE_SECONDS = env_int("KAMKEYS_SUPERUSER_IDLE_SECONDS", 15 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# A larger upload (a factory key file for the admin's import page) is written to disk sealed,
# never as it came (keyfiles.uploads).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "keyfiles.uploads.SealedFileUploadHandler",
]

# --- reverse proxies ----------------------------------------------------------------------------
# How many proxies of ours stand in front, each appending to X-Forwarded-For (kamkeys.clientip).
# Only then is X-Forwarded-Proto believed: without a proxy a client could send it and pose as
# HTTPS. allauth's rate limits use the same count, so they limit the real client, not the proxy.
try:
    KAMKEYS_TRUSTED_PROXY_COUNT = env_int("KAMKEYS_TRUSTED_PROXY_COUNT", 0)
except ConfigError as exc:
    fail(str(exc))
if KAMKEYS_TRUSTED_PROXY_COUNT < 0:
    fail("KAMKEYS_TRUSTED_PROXY_COUNT must be 0 or more (the reverse proxies in front)")
ALLAUTH_TRUSTED_PROXY_COUNT = KAMKEYS_TRUSTED_PROXY_COUNT
if KAMKEYS_TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "object-src": [NONE],
    }
}

# --- allauth ----------------------------------------------------------------------------------
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = env_int("KAMKEYS_ACTIVATION_DAYS", 3)
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[kamkeys] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    # Per address as for registration: "Forgot your password?" cannot flood an inbox either.
    "reset_password": "20/m/ip,3/10m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "change_password": "5/m/user",
    # Our registration (accounts.views.register): per IP, and per address so nobody can use
    # "Send" to flood someone's inbox (repeats get the same answer but no more mail).
    "register": "20/m/ip",
    "register_email": "3/10m/key",
    # Live password feedback while typing (the forms check again on submit).
    "password_check": "120/m/ip",
}
ACCOUNT_REAUTHENTICATION_TIMEOUT = env_int("KAMKEYS_REAUTHENTICATION_TIMEOUT", 300)
# One address per account: "Email address" changes it (no extra addresses). The new address is
# proven by a code typed into the asking browser, and is stored only then; asking needs a fresh
# re-authentication; the old address is told. Only a verified login address identifies anyone
# (accounts.selectors.user_for_verified_email); the reset form asks that rule.
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_FORMS = {"reset_password": "accounts.adapter.VerifiedEmailResetPasswordForm"}
# Security notices by email (through the outbox): password changed or reset, address changed,
# authenticator app added or removed, recovery codes regenerated.
ACCOUNT_EMAIL_NOTIFICATIONS = True
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "kamkeys"

KAMKEYS_SUPERUSER_MFA_REQUIRED = env_bool("KAMKEYS_SUPERUSER_MFA_REQUIRED", default=True)
KAMKEYS_ZIP_METER_FILES_LIMIT = env_int("KAMKEYS_ZIP_METER_FILES_LIMIT", 1000)

# --- logging: no key, password or token is ever passed to a logger ----------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Paths are logged without query string and with the secret of a token link replaced
    # (kamkeys.logredact): django.request logs every 4xx with its path.
    "filters": {"redact_tokens": {"()": "kamkeys.logredact.RedactTokens"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Replaces Django's default handlers of "django" (an unfiltered console when DEBUG).
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # runserver's request lines (embedded default) go through the same redaction.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- readrights -------------------------------------------------------------------------------
# How long an invitation link works, and how many customer emails one assignment may name.
KAMKEYS_INVITATION_DAYS = env_int("KAMKEYS_INVITATION_DAYS", 14)
KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT = env_int("KAMKEYS_MAX_EMAILS_PER_ASSIGNMENT", 50)

# --- devices ----------------------------------------------------------------------------------
# Registering a device by serial + 2-digit code: failed attempts allowed within 24 hours.
KAMKEYS_REGISTER_MAX_FAILURES_PER_SERIAL = env_int("KAMKEYS_REGISTER_MAX_FAILURES_PER_SERIAL", 5)
KAMKEYS_REGISTER_MAX_FAILURES_PER_ACCOUNT = env_int("KAMKEYS_REGISTER_MAX_FAILURES_PER_ACCOUNT", 20)

# --- api: the head-end API (issue 15) ---------------------------------------------------------
# Tokens only (no session, so no CSRF question); every error is application/problem+json.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per token (per client address before a token is known), counted in the Redis cache.
        "api_token": os.environ.get("KAMKEYS_API_RATE", "600/min"),
        "api_keys": os.environ.get("KAMKEYS_API_KEYS_RATE", "30/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "kamkeys head-end API",
    "DESCRIPTION": (
        "Machine access to meter keys and read rights with scoped, expiring, revocable tokens. "
        "Send `Authorization: Bearer kk_live_…`. Errors are application/problem+json (RFC 9457)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI from the sidecar package, served by our own static files (CSP: script-src 'self').
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
KAMKEYS_API_TOKEN_DEFAULT_DAYS = 90
KAMKEYS_API_TOKEN_MAX_DAYS = 365
# Working (not revoked, not expired) tokens one account may hold.
KAMKEYS_API_MAX_ACTIVE_TOKENS = 25
KAMKEYS_API_MAX_SERIALS = 100_000
