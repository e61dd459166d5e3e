from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Registers the project-wide system checks; holds no models."""

    name = "config"
    label = "journey_config"

    def ready(self):
        from config import checks  # noqa: F401 - registers the checks
