"""The quiz pages: the list of quizzes, starting one, taking it, its review, and the instructors' queue."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.roles import is_instructor
from config.redirects import back_to
from quizzes import selectors, services
from quizzes.display import answer_status, question_view, result_view
from quizzes.forms import BadAnswer, BulkReviewForm, ReviewForm, ReviewRequestForm, StartForm, response_from_post
from quizzes.models import Attempt, Verdict
from quizzes.templatetags.quiz_tags import percent

MSG_TIME_UP = "The time for this test ran out, so it was handed in with the answers you had saved."
MSG_CLOSED = "This attempt is already handed in; here is how it went."
MSG_NOT_YOURS = "Some of the selected answers are not yours to grade, so nothing was changed."


def index(request):
    # django_session, auth_user, auth_group (instructor?), sections with question counts, the student's attempts
    rows = selectors.quiz_catalogue(user=request.user)
    return render(
        request,
        "quizzes/index.html",
        {
            "sections": rows[:-1],
            "chapter": rows[-1],
            "method": settings.JOURNEY_QUIZ_GRADING,
            "is_instructor": is_instructor(request.user),
        },
    )


MSG_RESUMED = "You already have a test of this quiz open, so here it is again. Hand it in to start a new one."


@login_required
@require_http_methods(["GET", "POST"])
def start(request, slug):
    quiz = selectors.quiz_get(slug=slug)
    form = StartForm(request.POST or None)
    tests = selectors.open_tests(user=request.user)
    status = 200
    if request.method == "POST" and quiz.pool and form.is_valid():
        try:
            attempt = services.attempt_start(
                user=request.user, quiz=quiz.slug, mode=form.cleaned_data["mode"], timed=form.cleaned_data["timed"]
            )
        except services.PracticeClosed as exc:
            tests, status = [exc.test], 409
        else:
            if any(t.pk == attempt.pk for t in tests):
                messages.info(request, MSG_RESUMED)
            return redirect(attempt)
    blocker = selectors.practice_blocked_by(tests=tests, quiz=quiz.slug) if quiz.pool else None
    return render(
        request,
        "quizzes/start.html",
        {
            "quiz": quiz,
            "form": form,
            "attempts": selectors.attempts_of_quiz(user=request.user, quiz=quiz.slug),
            "open_test": selectors.open_test_of(tests, quiz.slug),
            "practice_closed_by": blocker,
            "blocker_title": blocker and selectors.quiz_title(attempt=blocker),
        },
        status=status,
    )


def _practice_closed(request, attempt: Attempt) -> Attempt | None:
    """The open test that closes this open practice attempt of the user's, if any. The caller sends
    the student to the quiz's start page, which says why and links back to the test."""
    if not (attempt.is_open and attempt.is_practice and attempt.user_id == request.user.pk):
        return None
    try:
        services.practice_check_open(user=request.user, quiz=attempt.quiz, question_ids=attempt.question_ids)
    except services.PracticeClosed as exc:
        return exc.test
    return None


def _to_start(attempt: Attempt):
    return redirect("quizzes:section", attempt.quiz)


def _attempt_or_closed(request, attempt_id, *, read_only: bool = False) -> Attempt:
    """The user's attempt, handed in by the server first if its time ran out. With read_only, an
    instructor may also read a handed-in attempt of a student in their class (and change nothing)."""
    attempt = selectors.attempt_get(user=request.user, attempt_id=attempt_id, read_only=read_only)
    if attempt.user_id != request.user.pk:
        if attempt.is_open:
            raise Http404("No such attempt.")
        return attempt
    if attempt.is_open and services.attempt_close_if_expired(attempt=attempt).timed_out:
        messages.warning(request, MSG_TIME_UP)
    return attempt


@login_required
@require_GET
def attempt(request, attempt_id):
    # django_session, auth_user, attempt, answers with their questions and sections, quiz title
    # + the student's open tests, in practice
    attempt = _attempt_or_closed(request, attempt_id)
    if not attempt.is_open:
        return redirect("quizzes:review", attempt.pk)
    if _practice_closed(request, attempt):
        return _to_start(attempt)
    items = []
    for answer in selectors.attempt_answers(attempt=attempt, with_terms=attempt.is_practice):
        checked = attempt.is_practice and answer.verdict
        items.append((question_view(attempt, answer), result_view(answer, show_key=False) if checked else None))
    return render(
        request,
        "quizzes/attempt.html",
        {
            "attempt": attempt,
            "title": selectors.quiz_title(attempt=attempt),
            "items": items,
            "pending": any(r and r.status == "pending" for _, r in items),
            "now": timezone.now(),
            "max_chars": settings.JOURNEY_ANSWER_MAX_CHARS,
        },
    )


def _read_answers(attempt: Attempt, data, positions=None) -> tuple[dict, list[int]]:
    responses, cut = {}, []
    for answer in selectors.attempt_answers(attempt=attempt):
        if positions is not None and answer.position not in positions:
            continue
        response, was_cut = response_from_post(attempt, answer.question, answer.position, data)
        responses[answer.position] = response
        if was_cut:
            cut.append(answer.position)
    return responses, cut


def _cut_message(cut: list[int]) -> str:
    numbers = ", ".join(str(n) for n in cut)
    return (
        f"Your answer to question {numbers} was longer than {settings.JOURNEY_ANSWER_MAX_CHARS:,} characters, "
        "so only its beginning was kept."
    )


@login_required
@require_POST
def attempt_save(request, attempt_id):
    """The page's one form: save every answer, then hand in, check one (practice) or stay."""
    attempt = _attempt_or_closed(request, attempt_id)
    if not attempt.is_open:
        if not attempt.timed_out:
            messages.info(request, MSG_CLOSED)
        return redirect("quizzes:review", attempt.pk)
    if _practice_closed(request, attempt):
        return _to_start(attempt)
    try:
        responses, cut = _read_answers(attempt, request.POST)
    except BadAnswer as exc:
        return HttpResponseBadRequest(str(exc))
    try:
        services.answers_save(attempt=attempt, responses=responses)
        if cut:
            messages.warning(request, _cut_message(cut))
        if request.POST.get("action") == "submit":
            services.attempt_submit(attempt=attempt)
            return redirect("quizzes:review", attempt.pk)
        check = request.POST.get("check", "")
        if check:
            if not attempt.is_practice or not check.isdigit() or int(check) not in responses:
                return HttpResponseBadRequest("Only practice attempts check single answers.")
            services.answer_check(attempt=attempt, position=int(check))
            return redirect(reverse("quizzes:attempt", args=[attempt.pk]) + f"#q{check}")
    except services.AttemptClosed:
        attempt.refresh_from_db()
        messages.warning(request, MSG_TIME_UP if attempt.timed_out else MSG_CLOSED)
        return redirect("quizzes:review", attempt.pk)
    messages.success(request, "Your answers are saved.")
    return redirect("quizzes:attempt", attempt.pk)


@login_required
@require_POST
def answer_autosave(request, attempt_id, position):
    """What the page's script posts as the student goes: one question's fields, JSON back."""
    attempt = _attempt_or_closed(request, attempt_id)
    answer = selectors.answer_at(attempt=attempt, position=position)
    if not attempt.is_open:
        return JsonResponse({"closed": True, "url": reverse("quizzes:review", args=[attempt.pk])}, status=409)
    if _practice_closed(request, attempt):
        return JsonResponse({"closed": True, "url": reverse("quizzes:section", args=[attempt.quiz])}, status=409)
    try:
        response, cut = response_from_post(attempt, answer.question, position, request.POST)
    except BadAnswer as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        changed = services.answers_save(attempt=attempt, responses={position: response})
    except services.AttemptClosed:
        return JsonResponse({"closed": True, "url": reverse("quizzes:review", args=[attempt.pk])}, status=409)
    return JsonResponse(
        {
            "saved": True,
            "changed": position in changed,
            "answered": response is not None,
            "message": _cut_message([position]) if cut else "",
        }
    )


@login_required
@require_POST
def attempt_submit(request, attempt_id):
    attempt = _attempt_or_closed(request, attempt_id)
    if _practice_closed(request, attempt):
        return _to_start(attempt)
    if attempt.is_open:
        services.attempt_submit(attempt=attempt)
    return redirect("quizzes:review", attempt.pk)


@login_required
@require_GET
def review(request, attempt_id):
    # django_session, auth_user, attempt, answers with questions and sections, their glossary terms, quiz title;
    # for its student: their open tests, and for a test their classes' rules (+ auth_group when hidden)
    attempt = _attempt_or_closed(request, attempt_id, read_only=True)
    if attempt.is_open:
        return redirect("quizzes:attempt", attempt.pk)
    release, hidden, test = _what_is_hidden(request, attempt)
    is_owner = attempt.user_id == request.user.pk
    items = [
        result_view(a, hidden=not release.shown or a.question_id in hidden, for_student=is_owner, handed_in=True)
        for a in selectors.attempt_answers(attempt=attempt, with_terms=True)
    ]
    return render(
        request,
        "quizzes/review.html",
        {
            "attempt": attempt,
            "is_owner": is_owner,
            "title": selectors.quiz_title(attempt=attempt),
            "items": items,
            "waiting": any(i.status in ("pending", "review") for i in items),
            "right": sum(1 for i in items if i.answer.verdict == Verdict.CORRECT),
            "release": release,
            "hidden_by": test,
            "hidden_by_title": test and selectors.quiz_title(attempt=test),
        },
    )


def _what_is_hidden(request, attempt: Attempt) -> tuple[selectors.KeyRelease, set[int], Attempt | None]:
    """What of a handed-in attempt's results the viewer may not see: the whole key (the class's
    rule), and the questions an open test of theirs asks (with the first such test)."""
    release = selectors.key_release(attempt=attempt, viewer=request.user)
    hidden, test = selectors.questions_hidden_from(viewer=request.user, attempt=attempt)
    return release, hidden, test


def known_statuses(value: str, limit: int = 500) -> dict[int, str]:
    """`1:final,2:pending` (what the page shows, from its blocks' data-status) as {position: status};
    anything malformed is left out, so that block is sent again."""
    known = {}
    for part in value.split(",")[:limit]:
        position, _, status = part.partition(":")
        if position.isdigit() and status.isalpha():
            known[int(position)] = status
    return known


@login_required
@require_GET
@never_cache
def attempt_status(request, attempt_id):
    """Small JSON for the page's script. Before hand-in it says what is saved and, in practice,
    how each checked answer did; a test's results appear only once it is handed in. With `known`
    (the statuses the page shows), an answer's result block is built only when its status differs,
    and a poll with nothing new reads the answers alone: the page asks every 2 s while a grade is
    pending, and for a class handing in together these polls were a large share of the server's
    work (bench/status_poll.py)."""
    # django_session, auth_user, attempt, the answers; for blocks to build: their questions, sections
    # and glossary terms, and for a handed-in test its student's open tests and their classes' rules
    attempt = _attempt_or_closed(request, attempt_id, read_only=True)
    shows_results = not attempt.is_open or attempt.is_practice
    known = known_statuses(request.GET.get("known", ""))
    answers = selectors.attempt_answers(attempt=attempt, with_questions=False)
    rows, build = [], []
    for answer in answers:
        row = {"n": answer.position, "saved": answer.response is not None}
        if shows_results:
            row["status"] = status = answer_status(answer)
            # The page replaces a block only when its status changed: build only those.
            if status != "unchecked" and known.get(answer.position) != status:
                build.append(answer.pk)
        rows.append(row)
    if build:
        if not attempt.is_open:
            release, hidden, _test = _what_is_hidden(request, attempt)
        else:
            release = selectors.SHOWN
            hidden, _test = selectors.questions_hidden_from(viewer=request.user, attempt=attempt)
        html = {}
        for answer in selectors.attempt_answers(attempt=attempt, with_terms=True, only=build):
            item = result_view(
                answer,
                show_key=not attempt.is_open,
                hidden=not release.shown or answer.question_id in hidden,
                for_student=attempt.user_id == request.user.pk,
                handed_in=not attempt.is_open,
            )
            html[answer.position] = render_to_string("quizzes/_result.html", {"item": item}, request=request)
        for row in rows:
            if row["n"] in html:
                row["html"] = html[row["n"]]
    right = sum(1 for answer in answers if answer.verdict == Verdict.CORRECT)
    statuses = {r.get("status") for r in rows}
    payload = {
        "state": attempt.state,
        "pending": "pending" in statuses,
        "review": "review" in statuses,
        "answers": rows,
    }
    if attempt.is_open and attempt.deadline:
        payload["seconds_left"] = max(0, int((attempt.deadline - timezone.now()).total_seconds()))
    if not attempt.is_open:
        payload.update(
            score=attempt.score,
            score_text=percent(attempt.score),
            right=right,
            url=reverse("quizzes:review", args=[attempt.pk]),
        )
    return JsonResponse(payload)


MSG_REVIEW_ASKED = (
    "You asked for a review. An instructor will look at your answer; until they decide, its grade stands."
)


@login_required
@require_POST
def review_request(request, answer_id):
    """A student asks a person to look at the grader's grade of one of their answers, from the results page."""
    answer = selectors.answer_get_for_student(user=request.user, answer_id=answer_id)
    back = reverse("quizzes:review", args=[answer.attempt_id]) + f"#q{answer.position}"
    form = ReviewRequestForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("reason", []):
            messages.error(request, error)
        return redirect(back)
    try:
        services.answer_review_request(answer=answer, by=request.user, reason=form.cleaned_data["reason"])
    except services.ReviewRefused as exc:
        messages.error(request, str(exc))
    else:
        # Says nothing of the key: the class's rule may still hide it.
        messages.success(request, MSG_REVIEW_ASKED)
    return redirect(back)


# ---------------------------------------------------------------- instructors


def _instructor_only(request):
    if not is_instructor(request.user):
        raise PermissionDenied("Only instructors review answers.")


def _graded_message(report: services.BulkReviewReport) -> tuple[str, str]:
    parts = [f"Graded {report.graded} answer{pluralize(report.graded)}."]
    if report.no_suggestion:
        n = report.no_suggestion
        still = pluralize(n, "it is,they are")
        parts.append(f"{n} had no suggestion from the grader to accept, so {still} still waiting.")
    if report.already_graded:
        n = report.already_graded
        left = f"{pluralize(n, 'was,were')} left as {pluralize(n, 'it was,they were')}"
        parts.append(f"{n} had already been graded meanwhile and {left}.")
    return ("success" if report.graded else "warning"), " ".join(parts)


@login_required
@require_GET
def review_queue(request):
    """Every answer waiting for this instructor, across the classes they teach."""
    # django_session, auth_user, auth_group (instructor?), classes taught with their waiting counts,
    # answers waiting, answers recently graded
    _instructor_only(request)
    classes = list(selectors.classrooms_reviewed_by(request.user).order_by("name", "pk"))
    waiting = [result_view(a) for a in selectors.review_queue(user=request.user)]
    recent = selectors.answers_recently_graded(user=request.user)
    return render(
        request,
        "quizzes/review_queue.html",
        {
            "classes": classes,
            "waiting": waiting,
            "recent": recent,
            "sees_all": selectors.sees_every_class(request.user),
            "select_all": request.GET.get("select") == "all",
            "draft": bulk_draft_pop(request),
            "here": request.path,
        },
    )


BULK_DRAFT = "review_bulk_draft"


def bulk_draft_pop(request) -> dict:
    """What the bulk form held when it was last sent back with an error (once), else nothing ticked."""
    return request.session.pop(BULK_DRAFT, None) or {"answers": [], "score": "", "comment": ""}


@login_required
@require_POST
def review_bulk(request):
    """The queue's bulk form: one POST, one transaction, only answers this instructor may grade."""
    _instructor_only(request)
    back = back_to(request, reverse("quizzes:review_queue"))
    form = BulkReviewForm(request.POST)
    if not form.is_valid():
        for error in [*form.non_field_errors(), *form.errors.get("score", [])]:
            messages.error(request, error)
        # Back to the queue with what was ticked and typed, for the instructor to put right.
        request.session[BULK_DRAFT] = {
            "answers": [int(a) for a in request.POST.getlist("answers") if a.isdigit()][: BulkReviewForm.MAX_ANSWERS],
            "score": request.POST.get("score", "")[:10],
            "comment": request.POST.get("comment", "")[:2000],
        }
        return redirect(back)
    ids = form.cleaned_data["answer_ids"]
    if len(selectors.answers_get_for_review(user=request.user, answer_ids=ids)) != len(ids):
        messages.error(request, MSG_NOT_YOURS)
        return redirect(back)
    try:
        report = services.answers_review_many(
            answer_ids=ids, by=request.user, score=form.cleaned_data["fraction"], comment=form.cleaned_data["comment"]
        )
    except services.NotYours:
        messages.error(request, MSG_NOT_YOURS)
        return redirect(back)
    level, text = _graded_message(report)
    getattr(messages, level)(request, text)
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def review_answer(request, answer_id):
    """Grade one answer: from the queue, or an override of any grade a student of yours got."""
    answer = selectors.answer_get_for_review(user=request.user, answer_id=answer_id)
    back = back_to(request, reverse("quizzes:review_queue"))
    suggestion = (answer.grader_result or {}).get("score")
    if suggestion is None and answer.score is not None:
        suggestion = answer.score
    form = ReviewForm(request.POST or None, suggestion=suggestion)
    if request.method == "POST" and form.is_valid():
        services.answer_review(
            answer=answer, by=request.user, score=form.cleaned_data["fraction"], comment=form.cleaned_data["comment"]
        )
        who = answer.attempt.user.get_username()
        messages.success(
            request, f"Saved: {who} gets {round(form.cleaned_data['fraction'] * 100)}% on {answer.question.slug}."
        )
        return redirect(back)
    if not form.is_bound:
        form = ReviewForm(
            initial={
                "score": None if answer.score is None else round(answer.score * 100),
                "comment": answer.instructor_comment,
            },
            suggestion=suggestion,
        )
    return render(
        request,
        "quizzes/review_answer.html",
        {"item": result_view(answer), "form": form, "back": back, "next": back_to(request, "")},
    )
