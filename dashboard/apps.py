from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Class pages and progress"

    def ready(self):
        from dashboard import signals  # noqa: F401  (connects the receivers that keep the summaries)
