"""Sign-up, profile, a log-in that slows down guessing, classes, the instructors' dashboard and My progress."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import charts, export, selectors, services
from accounts.forms import (
    ClassroomForm,
    CoInstructorForm,
    DeadlineForm,
    ExtensionForm,
    JoinForm,
    LoginForm,
    ProfileForm,
    SignupForm,
    TestAnswersForm,
)
from accounts.markup import format_html, format_html_join
from accounts.models import AnswersShown, QuizDeadline
from accounts.roles import is_instructor
from config.redirects import back_to
from courses.selectors import flashcards_due
from mlworker import services as job_services
from mlworker.assets import DATASET_LABELS
from mlworker.models import LIVE_STATES, JobState
from mlworker.selectors import jobs_list
from mlworker.workers import workers_panel
from quizzes import selectors as quiz_selectors
from quizzes import views as quiz_views
from quizzes.display import result_view
from quizzes.templatetags.quiz_tags import percent


class LoginView(auth_views.LoginView):
    """Django's log-in, answering 429 while the username or the address is paused (accounts.forms)."""

    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, code="locked"):
            response.status_code = 429
        return response


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(request, user)
        messages.success(request, "Welcome to Journey. Your account is ready.")
        return redirect(back_to(request, None) or "accounts:me")
    return render(request, "accounts/signup.html", {"form": form, "next": back_to(request, None)})


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    user = request.user
    initial = {"first_name": user.first_name, "last_name": user.last_name, "email": user.email}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.profile_update(user=user, **form.cleaned_data)
        messages.success(request, "Your profile is saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


# ---------------------------------------------------------------- classes


@login_required
@require_GET
def classes(request):
    return render(
        request,
        "accounts/classes.html",
        {
            "is_instructor": is_instructor(request.user),
            "taught": selectors.classrooms_taught_by(request.user),
            "joined": selectors.classrooms_of_student(request.user),
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
        return redirect("accounts:classes")
    try:
        classroom = services.classroom_create(by=request.user, name=form.cleaned_data["name"])
    except services.NotAllowed:
        raise PermissionDenied("Only instructors create classes.")
    messages.success(request, f"Class “{classroom.name}” created. Its join code is {classroom.code}.")
    return redirect("accounts:class_settings", classroom.pk)


def _join(request, code):
    try:
        membership = services.classroom_join(user=request.user, code=code)
    except services.NoSuchClass:
        return None
    messages.success(request, f"You are in “{membership.classroom.name}”.")
    return redirect("accounts:me")


@login_required
@require_http_methods(["GET", "POST"])
def class_join(request):
    form = JoinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        response = _join(request, form.cleaned_data["code"])
        if response:
            return response
        form.add_error("code", "No class has that code. Check it with your instructor.")
    return render(request, "accounts/join.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def class_join_link(request, code):
    classroom = selectors.classroom_by_code(code=code)
    if classroom is None:
        raise Http404("No class has that code.")
    if request.method == "POST":
        return _join(request, code)
    return render(request, "accounts/join_link.html", {"classroom": classroom, "code": code})


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


def _score_mark(n: int, s) -> SafeString:
    """One quiz's mark in a roster row's quizzes cell: its best score as a small shaded number (a dash
    before any test), with the quiz's number, best and last in words for screen readers and on hover.
    Written here, not in the template: 500 marks a page cost more through template filters than the
    rest of a row."""
    if not s.attempts:
        return format_html(
            '<span class="mark" title="{0}: no test yet"><span aria-hidden="true">–</span>'
            '<span class="sr-only">quiz {0}: no test;</span></span>',
            n,
        )
    best, last = percent(s.best), percent(s.last)
    level = "" if s.best is None else f" m{int(s.best * 10 + 1e-9)}"
    return format_html(
        '<span class="mark{}" title="{}: best {}, last {}"><span aria-hidden="true">{}</span>'
        '<span class="sr-only">quiz {}: best {}, last {};</span></span>',
        level, n, best, last, "?" if s.best is None else round(s.best * 100), n, best, last,
    )  # fmt: skip


def _marks_cell(scores) -> SafeString:
    """A roster row's quizzes cell: one mark a quiz, in order."""
    return format_html_join("", "{}", ((_score_mark(n, s),) for n, s in enumerate(scores, start=1)))


def _urls(name: str, *args) -> Callable[[int], str]:
    """The URL `name` for `args` and any last id (a student's, a job's), from one reverse() a page, not
    one a row."""
    marker = str(2**31 - 1)
    head, tail = reverse(name, args=[*args, marker]).rsplit(marker, 1)
    return lambda pk: f"{head}{pk}{tail}"


BEHIND = mark_safe(' class="behind"')  # the attribute of a roster row whose student missed a deadline


AGO_UNITS = (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400), ("hour", 3600),
             ("minute", 60))  # fmt: skip


def ago(then, now) -> str:
    """How long ago, in its largest whole unit ("3 days ago"): the roster's "last seen" (Django's
    timesince, with its translation lookups, cost more than the rest of a row)."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    for unit, size in AGO_UNITS:
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'' if n == 1 else 's'} ago"
    return "just now"


def _roster_row(row, marks: SafeString, url: str, now) -> SafeString:
    """One roster row, written here rather than in the template: 50 rows with ten quiz marks each cost
    the template engine more than the page's queries. format_html escapes everything that comes from
    data. tests/accounts/test_dashboard.py holds it to the template it stands for (ROSTER_ROW_TEMPLATE)."""
    missed = ""
    if row.missed:
        missed = format_html(
            ' <span class="tag bad" title="Missed: {}">missed {}</span>', ", ".join(row.missed), len(row.missed)
        )
    return format_html(
        "<tr{}>\n"
        '      <th scope="row"><a href="{}">{}</a>{}</th>\n'
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        '      <td class="marks">{}</td>\n'
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "    </tr>",
        BEHIND if row.missed else "",
        url, row.user.username, missed,
        row.sections_read, row.cards_reviewed, row.attempts, percent(row.mean_best),
        marks,
        row.jobs,
        "–" if row.best_error is None else charts.fixed(row.best_error, 4),
        ago(row.last_activity, now),
    )  # fmt: skip


@login_required
@require_GET
def class_dashboard(request, classroom_id):
    # Queries: django_session, auth_user, the classroom (with its answers waiting), sections
    # (quiz titles), deadlines, their extensions; the filtered class counted, then the page's students in
    # order with their progress rows, and their quiz scores; the class's kept bins and days (the charts).
    # Sorting and the filter run in the database over every student, so they hold across pages.
    classroom = _taught(request, classroom_id)
    titles = selectors.quiz_titles()
    deadlines = selectors.class_deadlines(classroom=classroom)
    sort = request.GET.get("sort", "name")
    behind = _threshold(request)
    now = timezone.now()
    order = selectors.roster_order(classroom=classroom, deadlines=deadlines, sort=sort, behind=behind, now=now)
    page = Paginator(order, ROSTER_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.roster_rows(deadlines=deadlines, page=page.object_list, now=now)
    behind_pct = None if behind is None else round(behind * 100)
    keep = "" if behind is None else f"&behind={behind_pct}"
    student_url = _urls("accounts:class_student", classroom.pk)
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
        "accounts/dashboard.html",
        {
            "classroom": classroom,
            "titles": titles,
            "quizzes": list(titles),
            "quiz_columns": _quiz_columns(titles, sort, keep),
            "keep": keep,
            "rows": [_roster_row(r, _marks_cell(r.score_list(titles)), student_url(r.user.pk), now) for r in rows],
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
    deadlines = selectors.class_deadlines(classroom=classroom)
    students = list(selectors.class_students(classroom=classroom))
    join_url = request.build_absolute_uri(reverse("accounts:class_join_link", args=[classroom.code]))
    return render(
        request,
        "accounts/class_settings.html",
        {
            "classroom": classroom,
            "join_url": join_url,
            "instructors": selectors.class_instructors(classroom=classroom),
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
    return redirect("accounts:class_settings", classroom.pk)


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
    return redirect("accounts:class_settings", classroom.pk)


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
    return redirect("accounts:class_settings", classroom.pk)


@login_required
@require_POST
def class_deadline_delete(request, classroom_id, deadline_id):
    classroom = _taught(request, classroom_id)
    deadline = get_object_or_404(QuizDeadline, classroom=classroom, pk=deadline_id)
    services.deadline_delete(deadline=deadline, by=request.user)
    messages.success(request, "Deadline removed.")
    return redirect("accounts:class_settings", classroom.pk)


@login_required
@require_POST
def class_extension_grant(request, classroom_id):
    classroom = _taught(request, classroom_id)
    deadlines = selectors.class_deadlines(classroom=classroom)
    students = list(selectors.class_students(classroom=classroom))
    form = ExtensionForm(
        request.POST, deadlines=deadlines, students=students, titles=selectors.quiz_titles(), auto_id="ext_%s"
    )
    if not form.is_valid():
        return _settings_page(request, classroom, extension_form=form, status=400)
    deadline = next(d for d in deadlines if d.pk == form.cleaned_data["deadline"])
    student = next(s for s in students if s.pk == form.cleaned_data["student"])
    services.extension_grant(deadline=deadline, by=request.user, student=student, due_at=form.cleaned_data["due_at"])
    messages.success(request, f"Extension saved for {student.username}.")
    return redirect("accounts:class_settings", classroom.pk)


@login_required
@require_GET
def class_student(request, classroom_id, user_id):
    classroom = _taught(request, classroom_id)
    student = selectors.class_student_get(classroom=classroom, user_id=user_id)
    titles = selectors.quiz_titles()
    return render(
        request,
        "accounts/student.html",
        {
            "classroom": classroom,
            "student": student,
            "events": selectors.student_timeline(user=student, titles=titles),
        },
    )


TOO_FEW_TESTS = format_html(
    '<span class="muted" title="Given from {} handed-in tests with the question on">too few tests</span>',
    selectors.DISCRIMINATION_MIN_TESTS,
)


def clip(text: str, n: int) -> str:
    """At most n characters, an ellipsis where it was cut (Truncator's lazy strings cost more here than
    the rest of the questions page's rows)."""
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _discrimination_cell(s) -> str:
    if s.discrimination is not None:
        return charts.fixed(s.discrimination, 2)
    return TOO_FEW_TESTS if s.attempts < selectors.DISCRIMINATION_MIN_TESTS else "–"  # or nobody's score varies


def _question_row(s) -> SafeString:
    """One row of the questions page, written here for the reason _roster_row gives: the numbers first,
    then the question and its wrong answers, which wrap (tests hold it to QUESTION_ROW_TEMPLATE)."""
    wrong = (
        format_html_join(
            mark_safe("<br>"),
            '{} <span class="muted">×{}</span>',
            ((clip(text, 80), n) for text, n in s.wrong),
        )
        if s.wrong
        else "–"
    )
    return format_html(
        "<tr>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        '      <th scope="row" class="wrap question-text">{}<br><span class="muted">{} · <code>{}</code></span></th>\n'
        '      <td class="wrap wrong-answers">{}</td>\n'
        "    </tr>",
        percent(s.facility), _discrimination_cell(s), s.attempts, clip(s.prompt, 140), s.section, s.slug,
        wrong,
    )  # fmt: skip


@login_required
@require_GET
def class_questions(request, classroom_id):
    # django_session, auth_user, classroom, the students' totals, their question tallies summed per
    # question, the questions' fields, their wrong-answer tallies summed per question and answer
    classroom = _taught(request, classroom_id)
    sort = request.GET.get("sort", "order")
    return render(
        request,
        "accounts/questions.html",
        {
            "classroom": classroom,
            "sort": sort,
            "rows": [_question_row(s) for s in selectors.class_question_stats(classroom=classroom, sort=sort)],
            "min_tests": selectors.DISCRIMINATION_MIN_TESTS,
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
        "accounts/review.html",
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


def _job_rows(jobs, classroom_pk: int, *, csrf_token: str) -> list[SafeString]:
    """The class experiments page's rows, written here for the reason _roster_row gives: the
    template engine cost more for 50 rows than the page's queries."""
    job_url = _urls("mlworker:job")
    cancel_url = _urls("accounts:class_job_cancel", classroom_pk)
    rows = []
    for job in jobs:
        stopping = job.cancel_requested and job.state == JobState.RUNNING
        cancel = ""
        if job.state in LIVE_STATES and not job.cancel_requested:
            cancel = format_html(
                '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<button type="submit" class="small secondary" data-confirm="Stop this experiment of {}? What it has '
                'trained so far is lost.">Cancel</button></form>',
                cancel_url(job.pk), csrf_token, job.owner.username,
            )  # fmt: skip
        created = timezone.localtime(job.created_at)
        rows.append(
            format_html(
                "<tr>\n"
                '      <td><a href="{}">#{}</a></td>\n'
                "      <td>{}</td>\n"
                '      <td><span class="state state-{}">{}</span>{}</td>\n'
                '      <td class="wrap">{}{}, {}, {} epoch{}, {} px, batch {}</td>\n'
                "      <td>{}</td>\n"
                "      <td>{} {}, {}</td>\n"
                "      <td>{}</td>\n"
                "    </tr>",
                job_url(job.pk), job.pk, job.owner.username,
                job.state, JobState(job.state).label, STOPPING if stopping else "",
                job.arch, "" if job.pretrained else " (from scratch)", job.dataset_label, job.epochs,
                "" if job.epochs == 1 else "s", job.image_size, job.batch_size,
                "–" if job.error_rate is None else charts.fixed(job.error_rate, 4),
                f"{created:%b}", created.day, f"{created:%H:%M}", cancel,
            )
        )  # fmt: skip
    return rows


STOPPING = mark_safe(' <span class="muted">(stopping)</span>')


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
        "accounts/jobs.html",
        {
            "classroom": classroom,
            "jobs": _job_rows(page.object_list, classroom.pk, csrf_token=get_token(request)),
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
    return redirect("accounts:class_jobs", classroom.pk)


@login_required
@require_GET
def class_export(request, classroom_id):
    # django_session, auth_user, classroom, sections, deadlines, their extensions; then, as it streams,
    # the class's quiz scores and the students with their progress rows
    classroom = _taught(request, classroom_id)
    chunks = export.class_csv(
        classroom=classroom,
        quizzes=list(selectors.quiz_titles()),
        deadlines=selectors.class_deadlines(classroom=classroom),
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
        "accounts/home.html",
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
        "accounts/me.html",
        {
            "numbers": selectors.my_numbers(user=user),
            "sections_total": len(titles) - 1,
            "quizzes": quizzes,
            "cards": flashcards_due(user=user, now=timezone.now()),
            "jobs": jobs_list(user=user)[:10],
            "deadlines": selectors.deadlines_for_student(user=user, titles=titles, done=done),
            "classes": selectors.classrooms_of_student(user),
            "now": timezone.now(),
        },
    )
