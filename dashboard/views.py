"""The class pages (classes, a class's roster, questions, review queue, experiments, settings and CSV),
an instructor's home, and a student's My progress. Writes go through accounts' and the lower apps'
services; the pages read dashboard.selectors and the summaries it keeps."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services
from accounts.forms import (
    ClassroomForm,
    CoInstructorForm,
    DeadlineForm,
    ExtensionForm,
    JoinForm,
    TestAnswersForm,
)
from accounts.models import AnswersShown, QuizDeadline
from accounts.roles import is_instructor
from accounts.selectors import (
    class_deadlines,
    class_instructors,
    class_student_get,
    class_students,
    classroom_by_code,
    classrooms_of_student,
    deadlines_for_student,
)
from courses.selectors import flashcards_due
from dashboard import charts, export, markup, questions, selectors
from mlworker import services as job_services
from mlworker.assets import DATASET_LABELS
from mlworker.models import LIVE_STATES, JobState
from mlworker.selectors import jobs_list
from mlworker.workers import workers_panel
from quizzes import selectors as quiz_selectors
from quizzes import views as quiz_views
from quizzes.display import result_view

# ---------------------------------------------------------------- classes


@login_required
@require_GET
def classes(request):
    return render(
        request,
        "dashboard/classes.html",
        {
            "is_instructor": is_instructor(request.user),
            "taught": selectors.classes_taught(request.user),
            "joined": classrooms_of_student(request.user),
            "create_form": ClassroomForm(),
            "join_form": JoinForm(),
        },
    )


@login_required
@require_POST
def class_create(request):
    form = ClassroomForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A class needs a name.")
        return redirect("dashboard:classes")
    try:
        classroom = services.classroom_create(by=request.user, name=form.cleaned_data["name"])
    except services.NotAllowed:
        raise PermissionDenied("Only instructors create classes.")
    messages.success(request, f"Class “{classroom.name}” created. Its join code is {classroom.code}.")
    return redirect("dashboard:class_settings", classroom.pk)


def _join(request, code):
    try:
        membership = services.classroom_join(user=request.user, code=code)
    except services.NoSuchClass:
        return None
    messages.success(request, f"You are in “{membership.classroom.name}”.")
    return redirect("dashboard:me")


@login_required
@require_http_methods(["GET", "POST"])
def class_join(request):
    form = JoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        response = _join(request, form.cleaned_data["code"])
        if response:
            return response
        form.add_error("code", "No class has that code. Check it with your instructor.")
    return render(request, "dashboard/join.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def class_join_link(request, code):
    classroom = classroom_by_code(code=code)
    if classroom is None:
        raise Http404("No class has that code.")
    if request.method == "POST":
        return _join(request, code)
    return render(request, "dashboard/join_link.html", {"classroom": classroom, "code": code})


def _taught(request, classroom_id):
    return selectors.classroom_get_for_instructor(user=request.user, classroom_id=classroom_id)


def _threshold(request) -> float | None:
    raw = request.GET.get("behind")
    if raw is None:
        return None
    try:
        return min(100.0, max(0.0, float(raw or 50))) / 100
    except ValueError:
        return 0.5


ROSTER_PAGE_SIZE = 50


def _quiz_columns(titles: dict[str, str], sort: str, keep: str) -> list[dict]:
    """Each quiz's column head: its title and the query strings of its "best" and "last" sort links
    (highest first; the link of the sort in force turns it around), with `keep` (the filter) after."""
    cols = []
    for q, title in titles.items():
        col = {"quiz": q, "title": title}
        for which in ("best", "last"):
            down = f"-quiz:{q}:{which}"
            col[which] = urlencode({"sort": down[1:] if sort == down else down}) + keep
        cols.append(col)
    return cols


def _urls(name: str, *args) -> Callable[[int], str]:
    """The URL `name` for `args` and a last id (a student's, a job's), from one reverse() a page."""
    return markup.url_maker(lambda pk: reverse(name, args=[*args, pk]))


@login_required
@require_GET
def class_dashboard(request, classroom_id):
    # Queries: django_session, auth_user, the classroom (with its answers waiting), sections
    # (quiz titles), deadlines, their extensions; the filtered class counted, then the page's students in
    # order with their progress rows, and their quiz scores; the class's kept bins and days (the charts).
    # Sorting and the filter run in the database over every student, so they hold across pages.
    classroom = _taught(request, classroom_id)
    titles = selectors.quiz_titles()
    deadlines = class_deadlines(classroom=classroom)
    sort = request.GET.get("sort", "name")
    behind = _threshold(request)
    now = timezone.now()
    order = selectors.roster_order(classroom=classroom, deadlines=deadlines, sort=sort, behind=behind, now=now)
    page = Paginator(order, ROSTER_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.roster_rows(deadlines=deadlines, page=page.object_list, now=now)
    behind_pct = None if behind is None else round(behind * 100)
    keep = "" if behind is None else f"&behind={behind_pct}"
    student_url = _urls("dashboard:class_student", classroom.pk)
    # The charts show the whole class, whatever the roster's filter keeps.
    score_charts = [
        charts.histogram_of_bins(id=f"scores-{quiz}", title=titles[quiz], bins=charts.bins_of_counts(counts))
        for quiz, counts in selectors.class_best_score_bins(classroom=classroom, quizzes=titles).items()
    ]
    activity = charts.activity_chart(
        id="activity",
        title="What the class has done so far",
        rows=selectors.class_activity_by_day(classroom=classroom),
        end=timezone.localdate(),
    )
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "classroom": classroom,
            "titles": titles,
            "quizzes": list(titles),
            "quiz_columns": _quiz_columns(titles, sort, keep),
            "keep": keep,
            "rows": [markup.roster_row(r, titles, student_url(r.user.pk), now) for r in rows],
            "page": page,
            "page_query": urlencode({"sort": sort}) + keep,
            "sort": sort,
            "behind": behind,
            "behind_pct": behind_pct,
            "deadlines": deadlines,
            "score_charts": score_charts,
            "activity": activity,
        },
    )


@login_required
@require_GET
def class_settings(request, classroom_id):
    return _settings_page(request, _taught(request, classroom_id))


def _settings_page(
    request, classroom, *, deadline_form=None, extension_form=None, answers_form=None, status=200
):  # fmt: skip
    """The class's settings; a form sent back with errors shows them beside its fields, with what was typed."""
    titles = selectors.quiz_titles()
    deadlines = class_deadlines(classroom=classroom)
    students = list(class_students(classroom=classroom))
    join_url = request.build_absolute_uri(reverse("dashboard:class_join_link", args=[classroom.code]))
    return render(
        request,
        "dashboard/class_settings.html",
        {
            "classroom": classroom,
            "join_url": join_url,
            "instructors": class_instructors(classroom=classroom),
            "students": students,
            "deadlines": deadlines,
            "titles": titles,
            "instructor_form": CoInstructorForm(),
            "answers_form": answers_form or TestAnswersForm(initial={"test_answers": classroom.test_answers}),
            "deadline_form": deadline_form or DeadlineForm(quizzes=titles),
            "extension_form": extension_form
            or ExtensionForm(deadlines=deadlines, students=students, titles=titles, auto_id="ext_%s"),
        },
        status=status,
    )


@login_required
@require_POST
def class_instructor_add(request, classroom_id):
    classroom = _taught(request, classroom_id)
    form = CoInstructorForm(request.POST)
    if form.is_valid():
        try:
            m = services.co_instructor_add(classroom=classroom, by=request.user, username=form.cleaned_data["username"])
            messages.success(request, f"{m.user.username} now teaches this class too.")
        except services.NoSuchUser as exc:
            messages.error(request, str(exc))
    return redirect("dashboard:class_settings", classroom.pk)


MSG_TEST_ANSWERS = {
    AnswersShown.AFTER_HAND_IN: "Saved: students see a test's right answers as soon as they hand it in.",
    AnswersShown.AFTER_DEADLINE: "Saved: students see a test's right answers after the quiz's deadline, "
    "or as soon as they hand it in if the quiz has no deadline.",
    AnswersShown.NEVER: "Saved: students never see a test's right answers, only their scores and their own answers.",
}


@login_required
@require_POST
def class_test_answers(request, classroom_id):
    classroom = _taught(request, classroom_id)
    form = TestAnswersForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, classroom, answers_form=form, status=400)
    services.classroom_test_answers_set(classroom=classroom, by=request.user, rule=form.cleaned_data["test_answers"])
    messages.success(request, MSG_TEST_ANSWERS[classroom.test_answers])
    return redirect("dashboard:class_settings", classroom.pk)


@login_required
@require_POST
def class_deadline_set(request, classroom_id):
    classroom = _taught(request, classroom_id)
    form = DeadlineForm(request.POST, quizzes=selectors.quiz_titles())
    if not form.is_valid():
        return _settings_page(request, classroom, deadline_form=form, status=400)
    services.deadline_set(classroom=classroom, by=request.user, **form.cleaned_data)
    if form.cleaned_data["due_at"] < timezone.now():
        messages.warning(
            request,
            "Deadline saved. That moment has already passed: every student without a test of this quiz "
            "counts as behind from now on.",
        )
    else:
        messages.success(request, "Deadline saved.")
    return redirect("dashboard:class_settings", classroom.pk)


@login_required
@require_POST
def class_deadline_delete(request, classroom_id, deadline_id):
    classroom = _taught(request, classroom_id)
    deadline = get_object_or_404(QuizDeadline, classroom=classroom, pk=deadline_id)
    services.deadline_delete(deadline=deadline, by=request.user)
    messages.success(request, "Deadline removed.")
    return redirect("dashboard:class_settings", classroom.pk)


@login_required
@require_POST
def class_extension_grant(request, classroom_id):
    classroom = _taught(request, classroom_id)
    deadlines = class_deadlines(classroom=classroom)
    students = list(class_students(classroom=classroom))
    form = ExtensionForm(
        request.POST, deadlines=deadlines, students=students, titles=selectors.quiz_titles(), auto_id="ext_%s"
    )
    if not form.is_valid():
        return _settings_page(request, classroom, extension_form=form, status=400)
    deadline = next(d for d in deadlines if d.pk == form.cleaned_data["deadline"])
    student = next(s for s in students if s.pk == form.cleaned_data["student"])
    services.extension_grant(deadline=deadline, by=request.user, student=student, due_at=form.cleaned_data["due_at"])
    messages.success(request, f"Extension saved for {student.username}.")
    return redirect("dashboard:class_settings", classroom.pk)


@login_required
@require_GET
def class_student(request, classroom_id, user_id):
    classroom = _taught(request, classroom_id)
    student = class_student_get(classroom=classroom, user_id=user_id)
    titles = selectors.quiz_titles()
    return render(
        request,
        "dashboard/student.html",
        {
            "classroom": classroom,
            "student": student,
            "events": selectors.student_timeline(user=student, titles=titles),
        },
    )


@login_required
@require_GET
def class_questions(request, classroom_id):
    # django_session, auth_user, classroom, the students' totals, their question tallies summed per
    # question, the questions' fields, their wrong-answer tallies summed per question and answer
    classroom = _taught(request, classroom_id)
    sort = request.GET.get("sort", "order")
    min_tests = questions.DISCRIMINATION_MIN_TESTS
    stats = questions.class_question_stats(classroom=classroom, sort=sort, min_tests=min_tests)
    return render(
        request,
        "dashboard/questions.html",
        {
            "classroom": classroom,
            "sort": sort,
            "rows": [markup.question_row(s, min_tests=min_tests) for s in stats],
            "min_tests": min_tests,
        },
    )


@login_required
@require_GET
def class_review(request, classroom_id):
    """The class's free-text answers waiting for an instructor, with the grader's suggestion and
    the controls to accept it, change it, or decide for several at once."""
    # django_session, auth_user, classroom (with its waiting count), auth_group (instructor?), answers waiting
    classroom = _taught(request, classroom_id)
    waiting = [result_view(a) for a in quiz_selectors.review_queue(user=request.user, classroom=classroom)]
    return render(
        request,
        "dashboard/review.html",
        {
            "classroom": classroom,
            "waiting": waiting,
            "select_all": request.GET.get("select") == "all",
            "draft": quiz_views.bulk_draft_pop(request),
            "here": request.path,
        },
    )


JOBS_PAGE_SIZE = 50
JOB_FILTER_NAMES = {"": "All", "live": "Queued or running", "failed": "Failed", "succeeded": "Succeeded",
                    "cancelled": "Cancelled"}  # fmt: skip


CANCEL_FORM = "job-cancel"  # the id of the form every Cancel button of the experiments page posts


@login_required
@require_GET
def class_jobs(request, classroom_id):
    # django_session, auth_user, classroom, the shown jobs counted, their page with owners, the class's
    # running jobs (for the workers panel), GPU workers alive, the jobs they run, jobs waiting in the
    # queue, the class's error rates (a few columns of each experiment that succeeded, for the chart)
    classroom = _taught(request, classroom_id)
    show = request.GET.get("show", "")
    show = show if show in selectors.JOB_FILTERS else ""
    page = Paginator(selectors.class_jobs(classroom=classroom, show=show), JOBS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    running = selectors.class_running_jobs(classroom=classroom)
    panel = workers_panel(jobs=running, describe=lambda job: f"{job.display_name}, {job.owner.username}")
    errors = charts.error_chart(
        id="error-rates",
        title="Error rates of the class's experiments",
        jobs=selectors.class_error_rates(classroom=classroom),
        dataset_labels=DATASET_LABELS,
    )
    return render(
        request,
        "dashboard/jobs.html",
        {
            "classroom": classroom,
            "jobs": markup.job_rows(
                page.object_list,
                job_url=_urls("mlworker:job"),
                cancel_url=_urls("dashboard:class_job_cancel", classroom.pk),
                cancel_form=CANCEL_FORM,
            ),
            "cancel_form": CANCEL_FORM,
            "page": page,
            "show": show,
            "filters": JOB_FILTER_NAMES,
            "live": LIVE_STATES,
            "workers": panel,
            "errors": errors,
        },
    )


@login_required
@require_POST
def class_job_cancel(request, classroom_id, job_id):
    classroom = _taught(request, classroom_id)
    job = selectors.class_job_get(classroom=classroom, job_id=job_id)
    job = job_services.job_cancel(job=job, by=request.user)
    if job.state == JobState.CANCELLED:
        said = f"You cancelled experiment #{job.pk} of {job.owner.username}. Its page tells them so."
    elif job.cancel_requested and job.is_live:
        said = f"Experiment #{job.pk} of {job.owner.username} stops at its next batch. Its page tells them you asked."
    else:
        said = f"Experiment #{job.pk} of {job.owner.username} had already ended: {job.get_state_display().lower()}."
    messages.info(request, said)
    return redirect("dashboard:class_jobs", classroom.pk)


@login_required
@require_GET
def class_export(request, classroom_id):
    # django_session, auth_user, classroom, sections, deadlines, their extensions; then, as it streams,
    # the class's quiz scores and the students with their progress rows
    classroom = _taught(request, classroom_id)
    chunks = export.class_csv(
        classroom=classroom,
        quizzes=list(selectors.quiz_titles()),
        deadlines=class_deadlines(classroom=classroom),
    )
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="class-{classroom.pk}-{stamp}.csv"'
    return response


# ---------------------------------------------------------------- an instructor's home


def instructor_home(request):
    """The classes an instructor teaches, each with what waits for them and a link to where they
    handle it (config.views.home shows it to instructors)."""
    # django_session, auth_user, auth_group (instructor?), sections (quiz titles), the classes with
    # their answers waiting, their deadlines, the deadlines' extensions, the students behind per class,
    # the experiments per class and state, the best-score counts of the quizzes with a deadline coming
    titles = selectors.quiz_titles()
    return render(
        request,
        "dashboard/home.html",
        {
            "classes": selectors.instructor_overview(user=request.user, titles=titles),
            "behind_pct": round(selectors.BEHIND_DEFAULT * 100),
        },
    )


# ---------------------------------------------------------------- my progress


@login_required
@require_GET
def me(request):
    user = request.user
    titles = selectors.quiz_titles()
    quizzes = quiz_selectors.quiz_catalogue(user=user)
    done = {row.quiz.slug for row in quizzes if row.tests}
    return render(
        request,
        "dashboard/me.html",
        {
            "numbers": selectors.my_numbers(user=user),
            "sections_total": len(titles) - 1,
            "quizzes": quizzes,
            "cards": flashcards_due(user=user, now=timezone.now()),
            "jobs": jobs_list(user=user)[:10],
            "deadlines": deadlines_for_student(user=user, titles=titles, done=done),
            "classes": classrooms_of_student(user),
            "now": timezone.now(),
        },
    )
