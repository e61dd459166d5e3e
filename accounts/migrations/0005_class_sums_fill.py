"""Fill the summaries, the classes' sums included, from the history already in the database."""

from django.db import migrations


def fill(apps, schema_editor):
    # This step ran `progress_rebuild`, the live code. That code moved to the dashboard app with the
    # summaries' models (0008), and reads them through dashboard's models; dashboard's 0002 runs it
    # instead, once the models are dashboard's.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_class_sums"),
        ("courses", "0003_flashcards"),
        ("mlworker", "0005_worker_presence"),
        ("quizzes", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
