"""Who may open which class URL, and a guard that every URL of the project is accounted for.

Roles: the student the object is about ("owner"), a second student of the same class, a student of
another class, the class's instructor, another class's instructor, a signed-in user of no role and
in no class ("outsider"), and an anonymous visitor.
"""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import AnswersShown, ClassMembership, Classroom, QuizDeadline
from mlworker.models import DatasetState, JobState, TrainingJob, UserDataset
from mlworker.services import job_submit
from quizzes.models import Answer, Attempt
from quizzes.services import (
    answer_grade_free_text,
    answers_save,
    attempt_start,
    attempt_submit,
)
from tests.dashboard.support import waiting_answer

pytestmark = pytest.mark.django_db

ROLES = ["owner", "student2", "other_student", "instructor", "other_instructor", "outsider", "anonymous"]
USERS = {
    "owner": "student",
    "student2": "student2",
    "other_student": "other_student",
    "instructor": "instructor",
    "other_instructor": "other_instructor",
    "outsider": "outsider",
}
LOGIN = "login"
VARIANT = "#"  # a second entry for one URL pattern: "name#what"


def _expect(instructor_gets):
    """Class pages: only the class's instructors; every other signed-in user gets 404."""
    return {
        "owner": 404, "student2": 404, "other_student": 404,
        "instructor": instructor_gets, "other_instructor": 404, "outsider": 404, "anonymous": LOGIN,
    }  # fmt: skip


OWNER_AND_INSTRUCTOR = dict.fromkeys(USERS, 404) | {"owner": 200, "instructor": 200, "anonymous": LOGIN}
OWNER_ONLY = dict.fromkeys(USERS, 404) | {"owner": 200, "anonymous": LOGIN}
ANY_SIGNED_IN = dict.fromkeys(USERS, 200) | {"anonymous": LOGIN}
# The bulk review: students are no instructors (403); another instructor's post is answered with a
# refusal and changes nothing (test_refused_posts_change_nothing).
INSTRUCTORS_ONLY_POST = dict.fromkeys(USERS, 403) | {"instructor": 302, "other_instructor": 302, "anonymous": LOGIN}


def _graded_answer(student) -> Answer:
    """A free-text answer the grader graded on its own, which its student may send for review."""
    attempt = attempt_start(user=student, quiz="history", mode="test")
    answers = {a.question.slug: a for a in attempt.answers.select_related("question")}
    answers_save(attempt=attempt, responses={answers["t-free"].position: {"text": "It memorises the data."}})
    attempt_submit(attempt=attempt)
    answer_grade_free_text(answer_id=answers["t-free"].pk)
    return Answer.objects.get(pk=answers["t-free"].pk)


OWNER_CHANGES = dict.fromkeys(USERS, 404) | {"owner": 302, "anonymous": LOGIN}


@pytest.fixture
def world(classroom, other_classroom, instructor, student, tiny_settings, take_test, fake_grader, stored_files):
    deadline = QuizDeadline.objects.create(classroom=classroom, quiz="chapter", due_at="2030-01-01T00:00Z")
    job = job_submit(user=student, job_settings=tiny_settings)
    attempt = take_test(student)
    waiting = waiting_answer(student)
    graded = _graded_answer(student)
    model = job_submit(user=student, job_settings=tiny_settings)
    TrainingJob.objects.filter(pk=model.pk).update(state=JobState.SUCCEEDED, model_file="jobs/m/model.pkl")
    dataset = UserDataset.objects.create(owner=student, name="mine", rule="folders", state=DatasetState.READY)
    return {"c": classroom, "d": deadline, "job": job, "attempt": attempt, "student": student, "waiting": waiting,
            "graded": graded, "model": model, "dataset": dataset, "files": stored_files}  # fmt: skip


def matrix(w):
    """name: (method, url, data, expected status per role). Names match the URL patterns' names."""
    c, s = w["c"], w["student"]
    return {
        "dashboard:class_dashboard": ("get", reverse("dashboard:class_dashboard", args=[c.pk]), None, _expect(200)),
        "dashboard:class_settings": ("get", reverse("dashboard:class_settings", args=[c.pk]), None, _expect(200)),
        "dashboard:class_student": (
            "get",
            reverse("dashboard:class_student", args=[c.pk, s.pk]),
            None,
            _expect(200),
        ),  # fmt: skip
        "dashboard:class_questions": ("get", reverse("dashboard:class_questions", args=[c.pk]), None, _expect(200)),
        "dashboard:class_jobs": ("get", reverse("dashboard:class_jobs", args=[c.pk]), None, _expect(200)),
        "dashboard:class_review": ("get", reverse("dashboard:class_review", args=[c.pk]), None, _expect(200)),
        "dashboard:class_export": ("get", reverse("dashboard:class_export", args=[c.pk]), None, _expect(200)),
        "dashboard:class_instructor_add": (
            "post",
            reverse("dashboard:class_instructor_add", args=[c.pk]),
            {"username": "nobody"},
            _expect(302),
        ),  # fmt: skip
        "dashboard:class_test_answers": (
            "post",
            reverse("dashboard:class_test_answers", args=[c.pk]),
            {"test_answers": "never"},
            _expect(302),
        ),  # fmt: skip
        "dashboard:class_deadline_set": (
            "post",
            reverse("dashboard:class_deadline_set", args=[c.pk]),
            {"quiz": "x"},
            _expect(400),  # the settings page again, the form's errors beside its fields
        ),  # fmt: skip
        "dashboard:class_deadline_delete": (
            "post",
            reverse("dashboard:class_deadline_delete", args=[c.pk, w["d"].pk]),
            {},
            _expect(302),
        ),  # fmt: skip
        "dashboard:class_extension_grant": (
            "post",
            reverse("dashboard:class_extension_grant", args=[c.pk]),
            {},
            _expect(400),
        ),  # fmt: skip
        "dashboard:class_job_cancel": (
            "post",
            reverse("dashboard:class_job_cancel", args=[c.pk, w["job"].pk]),
            {},
            _expect(302),
        ),  # fmt: skip
        "dashboard:class_join_link": (
            "get",
            reverse("dashboard:class_join_link", args=[c.code]),
            None,
            ANY_SIGNED_IN,
        ),  # fmt: skip
        "dashboard:class_join": ("get", reverse("dashboard:class_join"), None, ANY_SIGNED_IN),
        "dashboard:classes": ("get", reverse("dashboard:classes"), None, ANY_SIGNED_IN),
        "dashboard:class_create": (
            "post",
            reverse("dashboard:class_create"),
            {"name": "X"},
            INSTRUCTORS_ONLY_POST,
        ),  # fmt: skip
        "dashboard:me": ("get", reverse("dashboard:me"), None, ANY_SIGNED_IN),
        "accounts:profile": ("get", reverse("accounts:profile"), None, ANY_SIGNED_IN),
        "accounts:signup": (
            "get",
            reverse("accounts:signup"),
            None,
            dict.fromkeys(USERS, 302) | {"anonymous": 200},
        ),  # fmt: skip
        # The existing pages an instructor may now read for their class's students.
        "quizzes:review": ("get", reverse("quizzes:review", args=[w["attempt"].pk]), None, OWNER_AND_INSTRUCTOR),
        "mlworker:job": ("get", reverse("mlworker:job", args=[w["job"].pk]), None, OWNER_AND_INSTRUCTOR),
        "mlworker:status": ("get", reverse("mlworker:status", args=[w["job"].pk]), None, OWNER_AND_INSTRUCTOR),
        # Grading: only the instructors of the student's classes.
        "quizzes:review_answer": (
            "get",
            reverse("quizzes:review_answer", args=[w["waiting"].pk]),
            None,
            _expect(200),
        ),  # fmt: skip
        "quizzes:review_bulk": (
            "post",
            reverse("quizzes:review_bulk"),
            {"answers": [w["waiting"].pk], "action": "score", "score": 100},
            INSTRUCTORS_ONLY_POST,
        ),  # fmt: skip
        # Asking for a review of the grader's grade: only the student who wrote the answer, not even
        # their instructor (who grades it through quizzes:review_answer instead).
        "quizzes:review_request": (
            "post",
            reverse("quizzes:review_request", args=[w["graded"].pk]),
            {"reason": "Please look again."},
            OWNER_CHANGES,
        ),  # fmt: skip
        # Stored files, served only through these views (tests/mlworker/test_stored_files.py has the bytes
        # and /media/): the owner's own; a top-loss image also to the owner's instructor, who reads the
        # job page; a data set's samples to no instructor (only to a class it is shared with).
        **_file_views(w["files"]),
        # Sharing with a class: only the owner; tests/mlworker/test_sharing.py has what sharing opens.
        **{
            f"mlworker:{kind}_{action}": (
                "post",
                reverse(f"mlworker:{kind}_{action}", args=[w["model" if kind == "model" else "dataset"].pk]),
                {"classrooms": [c.pk]},
                OWNER_CHANGES,
            )
            for kind in ("model", "dataset")
            for action in ("share", "unshare")
        },
    }


def _file_views(files):
    job, dataset, p = files.job, files.dataset, files.prediction
    return {
        "mlworker:model": ("get", reverse("mlworker:model", args=[job.pk]), None, OWNER_ONLY),
        "mlworker:top_loss": ("get", reverse("mlworker:top_loss", args=[job.pk, 0]), None, OWNER_AND_INSTRUCTOR),
        "mlworker:dataset_sample": (
            "get",
            reverse("mlworker:dataset_sample", args=[dataset.pk, 0]),
            None,
            OWNER_ONLY,
        ),  # fmt: skip
        "mlworker:prediction_image": (
            "get",
            reverse("mlworker:prediction_image", args=[p.pk, "full"]),
            None,
            OWNER_ONLY,
        ),  # fmt: skip
        f"mlworker:prediction_image{VARIANT}thumb": (
            "get",
            reverse("mlworker:prediction_image", args=[p.pk, "thumb"]),
            None,
            OWNER_ONLY,
        ),  # fmt: skip
    }


@pytest.fixture
def clients(request, other_student, other_instructor, outsider):
    out = {}
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            fixture = USERS[role]
            client.force_login(request.getfixturevalue(fixture))
        out[role] = client
    return out


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_it_should(world, clients, role):
    failures = []
    for name, (method, url, data, expected) in matrix(world).items():
        response = (
            getattr(clients[role], method)(url, data) if data is not None else getattr(clients[role], method)(url)
        )
        want = expected[role]
        if want == LOGIN:
            ok = response.status_code == 302 and response["Location"].startswith(reverse("login"))
        else:
            ok = response.status_code == want
        if not ok:
            failures.append(f"{name} as {role}: {response.status_code}, expected {want}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["owner", "student2", "other_student", "other_instructor", "outsider", "anonymous"])
def test_refused_posts_change_nothing(world, clients, role):
    for name, (method, url, data, _expected) in matrix(world).items():
        if method == "post" and name != "dashboard:class_create":
            clients[role].post(url, data)
    assert QuizDeadline.objects.filter(pk=world["d"].pk).exists()
    assert Classroom.objects.get(pk=world["c"].pk).test_answers == AnswersShown.AFTER_DEADLINE
    world["job"].refresh_from_db()
    assert world["job"].state == JobState.QUEUED and not world["job"].cancel_requested
    if role != "owner":
        assert not world["model"].shared_with.exists() and not world["dataset"].shared_with.exists()
        world["graded"].refresh_from_db()
        assert not world["graded"].needs_review and world["graded"].review_requested_at is None
    clients[role].post(reverse("quizzes:review_answer", args=[world["waiting"].pk]), {"action": "score", "score": 100})
    world["waiting"].refresh_from_db()
    assert world["waiting"].needs_review and world["waiting"].score is None


def test_the_classs_instructor_grades_through_the_bulk_post(world, clients):
    clients["instructor"].post(*matrix(world)["quizzes:review_bulk"][1:3])
    world["waiting"].refresh_from_db()
    assert not world["waiting"].needs_review and world["waiting"].score == 1


@pytest.mark.parametrize(
    "name", ["dashboard:class_instructor_add", "dashboard:class_deadline_set", "dashboard:class_extension_grant",
             "dashboard:class_test_answers",
             "dashboard:class_job_cancel", "dashboard:class_deadline_delete", "dashboard:class_create",
             "quizzes:review_bulk", "quizzes:review_request"],
)  # fmt: skip
def test_state_changes_refuse_get(world, clients, name):
    method, url, _data, _expected = matrix(world)[name]
    assert clients["instructor"].get(url).status_code == 405
    assert QuizDeadline.objects.filter(pk=world["d"].pk).exists()


def test_the_join_link_joins_only_on_post(world, other_student):
    client = Client()
    client.force_login(other_student)
    url = reverse("dashboard:class_join_link", args=[world["c"].code])
    client.get(url)
    assert not ClassMembership.objects.filter(classroom=world["c"], user=other_student).exists()
    client.post(url)
    assert ClassMembership.objects.filter(classroom=world["c"], user=other_student).exists()


def test_every_state_change_needs_the_csrf_token(world, instructor, student):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(instructor)
    for name, (method, url, data, _expected) in matrix(world).items():
        if method == "post":
            assert strict.post(url, data).status_code == 403, name
    strict.force_login(student)
    assert strict.post(reverse("dashboard:class_join_link", args=[world["c"].code])).status_code == 403
    assert strict.post(reverse("accounts:profile"), {"email": "x@example.com"}).status_code == 403
    assert Classroom.objects.count() == 2
    assert not world["model"].shared_with.exists() and not world["dataset"].shared_with.exists()
    world["job"].refresh_from_db()
    assert world["job"].state == JobState.QUEUED
    world["waiting"].refresh_from_db()
    assert world["waiting"].needs_review
    world["graded"].refresh_from_db()
    assert not world["graded"].needs_review


# ---------------------------------------------------------------- the attempt rules
# One open test per quiz per student, practice closed while a test of the same questions is open,
# and a test's right answers only where the class's rule allows (tests/quizzes/test_answer_key.py
# has each rule in detail). Here: what each role gets.

KEY_SEEN = {"owner": False, "instructor": True}  # every other role: 404 (the matrix above)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_a_tests_answers_only_as_the_rule_allows(world, clients, role):
    QuizDeadline.objects.create(classroom=world["c"], quiz=world["attempt"].quiz, due_at="2030-01-01T00:00Z")
    review = clients[role].get(reverse("quizzes:review", args=[world["attempt"].pk]))
    status = clients[role].get(reverse("quizzes:status", args=[world["attempt"].pk]))
    if role not in KEY_SEEN:
        assert review.status_code == status.status_code == (302 if role == "anonymous" else 404)
        return
    page = review.content.decode() + "".join(row.get("html", "") for row in status.json()["answers"])
    assert ("EXPLAIN-ML" in page) is KEY_SEEN[role]


@pytest.mark.parametrize("role", ["owner", "student2", "other_student", "instructor"])
def test_each_signed_in_role_gets_one_open_test_per_quiz_and_no_practice_beside_it(clients, role, world):
    client = clients[role]
    start = reverse("quizzes:section", args=["history"])
    first, second = client.post(start, {"mode": "test"}), client.post(start, {"mode": "test"})
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    practice = client.post(start, {"mode": "practice"})
    assert practice.status_code == 409 and first["Location"] in practice.content.decode()
    test = Attempt.objects.get(pk=int(first["Location"].rstrip("/").split("/")[-1]))
    assert Attempt.objects.filter(user=test.user, quiz="history", state="in_progress").count() == 1


# ---------------------------------------------------------------- the queues
# A student's zip is checked on its own `uploads` queue and worker, so that a slow zip never holds up
# free-text grading or housekeeping (the review's 66 KB zip held the `cpu` queue for 98 s).


def _queue_of(task_name):
    """The queue Celery publishes a task to, by CELERY_TASK_ROUTES as the app reads them."""
    from config.celery_app import app

    return app.amqp.router.route({}, task_name)["queue"].name


def test_only_the_data_set_check_goes_to_the_uploads_queue():
    from config.celery_app import app

    app.loader.import_default_modules()
    tasks = {name for name in app.tasks if not name.startswith("celery.")}
    quizzes = {name for name in tasks if name.startswith("quizzes.")}
    assert quizzes >= {"quizzes.tasks.grade_free_text", "quizzes.tasks.housekeeping"}
    assert {name for name in tasks if _queue_of(name) == "uploads"} == {"mlworker.tasks.dataset_check"}
    # Grading and both housekeepings share a queue with nothing that decodes a student's images.
    assert {_queue_of(name) for name in quizzes | {"mlworker.tasks.housekeeping"}} == {"cpu"}


# ---------------------------------------------------------------- every URL accounted for

# Pages tested elsewhere, by their own apps' tests (tests/courses, tests/quizzes, tests/mlworker,
# tests/config) or here in tests/accounts/test_accounts.py and test_classes.py.
COVERED_ELSEWHERE = {
    "home", "healthz", "login", "logout",
    "password_change", "password_change_done", "password_reset", "password_reset_done",
    "password_reset_confirm", "password_reset_complete",
    "courses:chapter", "courses:flashcard_review", "courses:flashcards", "courses:glossary", "courses:mark_read",
    "courses:search", "courses:section", "courses:term",
    "quizzes:attempt", "quizzes:autosave", "quizzes:index", "quizzes:review_queue",
    "quizzes:save", "quizzes:section", "quizzes:status", "quizzes:submit",
    "mlworker:batch", "mlworker:cancel", "mlworker:compare", "mlworker:dataset_delete",
    "mlworker:datasets", "mlworker:jobs", "mlworker:model_delete", "mlworker:model_rename",
    "mlworker:models", "mlworker:new", "mlworker:predict", "mlworker:prediction",
    "mlworker:prediction_status",
}  # fmt: skip
NOT_OURS = {"admin"}  # Django's admin, guarded by its own staff check
DEBUG_ONLY = {"^media/(?P<path>.*)$"}


def _names(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace in NOT_OURS:
                continue
            yield from _names(p.url_patterns, prefix + (f"{p.namespace}:" if p.namespace else ""))
        elif isinstance(p, URLPattern):
            yield prefix + (p.name or str(p.pattern))


def test_every_url_pattern_is_in_the_matrix_or_covered_elsewhere(world):
    found = set(_names(get_resolver().url_patterns)) - DEBUG_ONLY
    listed = {name.split(VARIANT)[0] for name in matrix(world)} | COVERED_ELSEWHERE
    assert not found - listed, f"URL patterns nobody tests for access: {sorted(found - listed)}"
    assert not listed - found, f"listed but gone: {sorted(listed - found)}"
