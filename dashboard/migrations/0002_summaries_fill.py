"""Fill the summaries, the classes' sums included, from the history already in the database: the step
accounts 0005 ran before the summaries moved here. On a database that already ran it, this writes the
same rows again."""

from django.db import migrations


def fill(apps, schema_editor):
    # The same code the services and `progress_rebuild` use, so a database migrated today holds what
    # a rebuild writes. It reads today's models: should a later migration change the tables it reads,
    # that migration must turn this step into a no-op and run the rebuild itself (as accounts 0003 did
    # for accounts 0005, and accounts 0005 for this one).
    from dashboard.progress import progress_rebuild

    progress_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0001_initial"),
        ("accounts", "0008_summaries_to_dashboard"),
        ("courses", "0003_flashcards"),
        ("mlworker", "0009_job_cancelled_by"),
        ("quizzes", "0003_answer_review_request"),
    ]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
