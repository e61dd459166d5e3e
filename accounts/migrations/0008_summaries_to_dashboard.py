"""The class pages' summaries and class sums are dashboard's models now (dashboard 0001 takes them
over). Only Django's idea of the models moves: the tables stay as they are, with their rows, under
the same names (the models set db_table)."""

from django.db import migrations

MOVED = [
    "StudentProgress", "QuizProgress", "ActivityDay", "QuestionTally", "WrongAnswerTally",
    "ClassQuestionStats", "ClassWrongAnswer", "ClassActivityDay", "ClassScoreBin", "ClassWaiting",
]  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_class_test_answers"),
        ("dashboard", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name=name) for name in MOVED],
            database_operations=[],
        ),
    ]
