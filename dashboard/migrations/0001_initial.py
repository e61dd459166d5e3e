"""The class pages' summaries and class sums, taken over from accounts (whose 0008 lets them go) with
their tables as they are: only Django's idea of the models is created here, no table. Their content
types follow them, so that permissions given on them stay given."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = [
    "studentprogress", "quizprogress", "activityday", "questiontally", "wronganswertally",
    "classquestionstats", "classwronganswer", "classactivityday", "classscorebin", "classwaiting",
]


def content_types_follow(apps, schema_editor):
    # A database made before the move has these models' content types under accounts; a fresh one has
    # none yet (Django makes them after the last migration).
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="accounts", model__in=MOVED).update(app_label="dashboard")


def content_types_go_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="dashboard", model__in=MOVED).update(app_label="accounts")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0007_class_test_answers'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('quizzes', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='StudentProgress',
                    fields=[
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='progress', serialize=False, to=settings.AUTH_USER_MODEL)),
                        ('sections_read', models.PositiveIntegerField(default=0)),
                        ('cards_reviewed', models.PositiveIntegerField(default=0)),
                        ('tests', models.PositiveIntegerField(default=0, help_text='Tests handed in.')),
                        ('jobs', models.PositiveIntegerField(default=0)),
                        ('best_error', models.FloatField(blank=True, help_text='Lowest error rate of a job that succeeded.', null=True)),
                        ('last_activity', models.DateTimeField(blank=True, null=True)),
                        ('answers_waiting', models.PositiveIntegerField(default=0, help_text='Handed-in answers waiting for an instructor.')),
                        ('mean_best', models.FloatField(blank=True, help_text='Mean of the best scores of the quizzes tested.', null=True)),
                    ],
                    options={
                        'db_table': 'accounts_studentprogress',
                    },
                ),
                migrations.CreateModel(
                    name='ClassWaiting',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('answers', models.PositiveIntegerField(default=0)),
                        ('classroom', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='waiting', to='accounts.classroom')),
                    ],
                    options={
                        'db_table': 'accounts_classwaiting',
                    },
                ),
                migrations.CreateModel(
                    name='ActivityDay',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('read', models.PositiveIntegerField(default=0)),
                        ('tests', models.PositiveIntegerField(default=0)),
                        ('jobs', models.PositiveIntegerField(default=0)),
                        ('day', models.DateField()),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activity_days', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_activityday',
                        'constraints': [models.UniqueConstraint(fields=('user', 'day'), name='one_activity_row_per_day')],
                    },
                ),
                migrations.CreateModel(
                    name='ClassActivityDay',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('read', models.PositiveIntegerField(default=0)),
                        ('tests', models.PositiveIntegerField(default=0)),
                        ('jobs', models.PositiveIntegerField(default=0)),
                        ('day', models.DateField()),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='activity_days', to='accounts.classroom')),
                    ],
                    options={
                        'db_table': 'accounts_classactivityday',
                        'constraints': [models.UniqueConstraint(fields=('classroom', 'day'), name='one_class_activity_row_per_day')],
                    },
                ),
                migrations.CreateModel(
                    name='ClassQuestionStats',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('answers', models.PositiveIntegerField(default=0)),
                        ('score_sum', models.FloatField(default=0.0)),
                        ('score_sq', models.FloatField(default=0.0)),
                        ('rest_sum', models.FloatField(default=0.0)),
                        ('rest_sq', models.FloatField(default=0.0)),
                        ('cross', models.FloatField(default=0.0)),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='question_stats', to='accounts.classroom')),
                        ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='quizzes.question')),
                    ],
                    options={
                        'db_table': 'accounts_classquestionstats',
                        'constraints': [models.UniqueConstraint(fields=('classroom', 'question'), name='one_stats_row_per_question')],
                    },
                ),
                migrations.CreateModel(
                    name='ClassScoreBin',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('quiz', models.CharField(max_length=60)),
                        ('bin', models.PositiveSmallIntegerField()),
                        ('students', models.PositiveIntegerField(default=0)),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='score_bins', to='accounts.classroom')),
                    ],
                    options={
                        'db_table': 'accounts_classscorebin',
                        'constraints': [models.UniqueConstraint(fields=('classroom', 'quiz', 'bin'), name='one_count_per_bin')],
                    },
                ),
                migrations.CreateModel(
                    name='ClassWrongAnswer',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('text', models.TextField()),
                        ('n', models.PositiveIntegerField(default=0)),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='wrong_answers', to='accounts.classroom')),
                        ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='quizzes.question')),
                    ],
                    options={
                        'db_table': 'accounts_classwronganswer',
                        'indexes': [models.Index(fields=['classroom', 'question', '-n'], name='accounts_cl_classro_9d3a0e_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='QuestionTally',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('answers', models.PositiveIntegerField(default=0)),
                        ('score_sum', models.FloatField(default=0.0)),
                        ('score_sq', models.FloatField(default=0.0)),
                        ('rest_sum', models.FloatField(default=0.0)),
                        ('rest_sq', models.FloatField(default=0.0)),
                        ('cross', models.FloatField(default=0.0)),
                        ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='quizzes.question')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='question_tallies', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_questiontally',
                        'constraints': [models.UniqueConstraint(fields=('user', 'question'), name='one_tally_per_question')],
                    },
                ),
                migrations.CreateModel(
                    name='QuizProgress',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('quiz', models.CharField(max_length=60)),
                        ('tests', models.PositiveIntegerField(default=0, help_text='Tests of this quiz handed in.')),
                        ('best', models.FloatField(blank=True, null=True)),
                        ('last', models.FloatField(blank=True, help_text='Score of the latest test started.', null=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='quiz_progress', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_quizprogress',
                        'constraints': [models.UniqueConstraint(fields=('user', 'quiz'), name='one_quiz_progress_per_quiz')],
                    },
                ),
                migrations.CreateModel(
                    name='WrongAnswerTally',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('text', models.TextField()),
                        ('n', models.PositiveIntegerField(default=0)),
                        ('question', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='quizzes.question')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='wrong_tallies', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'accounts_wronganswertally',
                        'indexes': [models.Index(fields=['user', 'question'], name='accounts_wr_user_id_2cb38b_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_types_follow, content_types_go_back),
    ]
