"""Fill the new summaries from the history already in the database."""

from django.db import migrations


def fill(apps, schema_editor):
    # The summaries are computed by the same code the services and `progress_rebuild` use, so a
    # database migrated today holds exactly what a rebuild would write. That code reads today's
    # models: should a later migration change the tables it reads, run `manage.py progress_rebuild`
    # after it instead of relying on this step.
    from accounts.progress import progress_rebuild

    progress_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_progress_summaries"),
        ("courses", "0003_flashcards"),
        ("mlworker", "0003_user_datasets"),
        ("quizzes", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
