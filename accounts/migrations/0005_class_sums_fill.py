"""Fill the summaries, the classes' sums included, from the history already in the database."""

from django.db import migrations


def fill(apps, schema_editor):
    # The same code the services and `progress_rebuild` use, so a database migrated today holds what
    # a rebuild writes. It reads today's models: should a later migration change the tables it reads,
    # that migration must turn this step into a no-op and run the rebuild itself (as 0003 did for 0005).
    from accounts.progress import progress_rebuild

    progress_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_class_sums"),
        ("courses", "0003_flashcards"),
        ("mlworker", "0005_worker_presence"),
        ("quizzes", "0001_initial"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
