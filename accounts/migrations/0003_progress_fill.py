"""Fill the new summaries from the history already in the database."""

from django.db import migrations


def fill(apps, schema_editor):
    # This step ran `progress_rebuild`, the live code. The summaries' tables have changed since
    # (0004), so that code no longer fits the tables as they are at this point; 0005 runs it instead,
    # once every table it reads is in place.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_progress_summaries"),
        ("courses", "0003_flashcards"),
        ("mlworker", "0003_user_datasets"),
        ("quizzes", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
