"""System checks that refuse a production start on laptop defaults."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=False)
def production_settings_check(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return []
    errors = []
    if not settings.SECRET_KEY or settings.SECRET_KEY.startswith("journey-development"):
        errors.append(
            Error("SECRET_KEY is not set.", hint="Set SECRET_KEY to a long random string.", id="journey.E001")
        )
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
    if settings.CELERY_BROKER_URL.startswith("sqla+sqlite"):
        errors.append(
            Error(
                "Production needs a real broker, not the embedded SQLite file.",
                hint="Set CELERY_BROKER_URL=redis://HOST:6379/0",
                id="journey.E004",
            )
        )
    return errors
