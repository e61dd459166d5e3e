"""One open test per quiz per student. A student who already holds several has the newest kept open
and the older ones handed in by the server with the answers saved in them."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count


def hand_in_extra_open_tests(apps, schema_editor):
    Attempt = apps.get_model("quizzes", "Attempt")
    open_tests = Attempt.objects.filter(state="in_progress", mode="test")
    doubled = open_tests.values("user_id", "quiz").annotate(n=Count("pk")).filter(n__gt=1)
    if not doubled:
        return
    # Handing in grades the answers and updates the class summaries: only the live service does that
    # right, so it runs here, and only for the rare database that has such tests at all.
    from quizzes.models import Attempt as LiveAttempt
    from quizzes.services import attempt_submit

    for group in doubled:
        ids = open_tests.filter(user_id=group["user_id"], quiz=group["quiz"]).order_by("-started_at", "-pk")
        for pk in list(ids.values_list("pk", flat=True))[1:]:
            attempt_submit(attempt=LiveAttempt.objects.get(pk=pk))


class Migration(migrations.Migration):
    dependencies = [
        ("quizzes", "0001_initial"),
        ("accounts", "0007_class_test_answers"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(hand_in_extra_open_tests, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="attempt",
            constraint=models.UniqueConstraint(
                condition=models.Q(("mode", "test"), ("state", "in_progress")),
                fields=("user", "quiz"),
                name="one_open_test_per_quiz",
            ),
        ),
    ]
