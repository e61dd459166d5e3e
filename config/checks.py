"""System checks that refuse a production start on laptop defaults."""

from django.conf import settings
from django.core.checks import Error, Tags, register

# Django's own deploy check (security.W009) asks this much of a key: at least 50 characters, at
# least 5 different ones, and not one of the keys startproject writes.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
SECRET_KEY_HINT = (
    'Set SECRET_KEY to 50 or more random characters: python -c "import secrets; print(secrets.token_urlsafe(50))"'
)
# Words that only a placeholder or an example key holds ("change-me-to-a-long-random-string").
PLACEHOLDER_WORDS = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "your-secret",
    "secret-key",
    "example",
    "placeholder",
)


def secret_key_problem(key: str) -> str | None:
    """What is wrong with a production SECRET_KEY, or None. A key anyone can read (ours for laptops,
    the one in .env.example, Django's insecure ones) signs sessions and password-reset links that
    anyone can forge."""
    if not key:
        return "is not set"
    lowered = key.lower()
    if lowered.startswith(("journey-development", "django-insecure-")) or any(w in lowered for w in PLACEHOLDER_WORDS):
        return "is a placeholder that anyone can read"
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE:
        return (
            f"is too short or too plain (at least {SECRET_KEY_MIN_LENGTH} characters, "
            f"{SECRET_KEY_MIN_UNIQUE} different)"
        )
    return None


@register(Tags.security, deploy=False)
def production_settings_check(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    errors = []
    key_problem = secret_key_problem(settings.SECRET_KEY)
    if key_problem:
        errors.append(Error(f"SECRET_KEY {key_problem}.", hint=SECRET_KEY_HINT, id="journey.E001"))
    if not settings.ALLOWED_HOSTS:
        errors.append(Error("ALLOWED_HOSTS is empty.", hint="Set ALLOWED_HOSTS=journey.example.org", id="journey.E002"))
    if not settings.DATABASE_URL or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        errors.append(
            Error(
                "Production needs PostgreSQL, not the embedded SQLite file.",
                hint="Set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/NAME",
                id="journey.E003",
            )
        )
    secret = settings.AWS_SECRET_ACCESS_KEY.lower()
    if settings.JOURNEY_STORAGE == "s3" and any(w in secret for w in PLACEHOLDER_WORDS):
        errors.append(
            Error(
                "AWS_SECRET_ACCESS_KEY is a placeholder that anyone can read: every stored file would be too.",
                hint="Make up a key pair for the object store (the same in its settings and in Journey's).",
                id="journey.E007",
            )
        )
    if settings.CELERY_BROKER_URL.startswith("sqla+sqlite"):
        errors.append(
            Error(
                "Production needs a real broker, not the embedded SQLite file.",
                hint="Set CELERY_BROKER_URL=redis://HOST:6379/0",
                id="journey.E004",
            )
        )
    return errors


@register(deploy=False)
def storage_settings_check(app_configs, **kwargs):
    """The object store needs its keys; signed links need a store that signs them."""
    errors = []
    if settings.JOURNEY_STORAGE == "s3":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_STORAGE_BUCKET_NAME"):
            if not getattr(settings, name):
                errors.append(
                    Error(
                        f"JOURNEY_STORAGE=s3 needs {name}.",
                        hint="Set AWS_S3_ENDPOINT_URL, AWS_STORAGE_BUCKET_NAME, AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (README, Settings).",
                        id="journey.E005",
                    )
                )
    elif settings.JOURNEY_SIGNED_LINKS:
        errors.append(
            Error(
                "JOURNEY_SIGNED_LINKS needs the object store: local files have no signed links.",
                hint="Set JOURNEY_STORAGE=s3, or unset JOURNEY_SIGNED_LINKS (the views then send the files).",
                id="journey.E006",
            )
        )
    return errors
