"""The markup the class pages write thousands of times (chart shapes, table rows), written in Python
rather than by the template engine, for the pages bench/class_scale.py measures.

format_html and format_html_join are Django's, with the same escaping at a fraction of the cost:
Django's versions send every argument through escape(), whose lazy-string wrapper costs several times
the escaping itself, and a class page formats a few thousand arguments. These escape the same way (an
object with __html__ gives its own markup, anything else is made a str and passed to html.escape,
quotes included) and mark the result safe. Numbers, which have nothing to escape, go in as they are.

The rows of the roster, the questions page and the experiments page are written here too: 50 rows
with ten quiz marks each cost the template engine more than the page's queries.
tests/dashboard/test_markup.py holds each to the template it stands for.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from mlworker.models import LIVE_STATES, JobState
from quizzes.templatetags.quiz_tags import percent

_NUMBERS = (int, float)


def _escaped(value):
    if type(value) in _NUMBERS:
        return value
    own = getattr(value, "__html__", None)
    return own() if own is not None else html.escape(str(value))


def format_html(template: str, *args) -> SafeString:
    """`template` filled with the arguments, each escaped unless it is already safe."""
    return SafeString(template.format(*map(_escaped, args)))


def format_html_join(sep: str, template: str, args: Iterable[tuple]) -> SafeString:
    """format_html of each tuple of arguments, joined by `sep` (escaped too, as Django does)."""
    return SafeString(_escaped(sep).join([template.format(*map(_escaped, a)) for a in args]))


def fixed(value, places: int = 1) -> str:
    """What the template filter `floatformat:places` writes for a plain number (rounded half up from
    its shortest repr, no "-0.0"), without that filter's localisation work, which a chart of a few
    hundred shapes would pay for on every request. Not a number: an empty string."""
    try:
        d = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    except (InvalidOperation, ValueError, TypeError):
        return ""
    return f"{abs(d) if d == 0 else d:f}"


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


def clip(text: str, n: int) -> str:
    """At most n characters, an ellipsis where it was cut (Truncator's lazy strings cost more here than
    the rest of the questions page's rows)."""
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def url_maker(url_of: Callable[[str], str]) -> Callable[[int], str]:
    """A function from an id to the URL that `url_of(id)` gives, for a page's rows: `url_of` (a
    reverse() with the id last) is called once a page, not once a row."""
    marker = str(2**31 - 1)
    head, tail = url_of(marker).rsplit(marker, 1)
    return lambda pk: f"{head}{pk}{tail}"


# ---------------------------------------------------------------- the roster


def _score_mark(n: int, s) -> SafeString:
    """One quiz's mark in a roster row's quizzes cell: its best score as a small shaded number (a dash
    before any test), with the quiz's number, best and last in words for screen readers and on hover.
    Every value here is a number or a percentage this module makes (no text from a user), so it is
    written with a plain f-string: the roster writes one per student and quiz, and escaping numbers
    was a tenth of the page's time."""
    n = int(n)
    if not s.attempts:
        return SafeString(
            f'<span class="mark" title="{n}: no test yet"><span aria-hidden="true">–</span>'
            f'<span class="sr-only">quiz {n}: no test;</span></span>'
        )
    best, last = percent(s.best), percent(s.last)
    level = "" if s.best is None else f" m{int(s.best * 10 + 1e-9)}"
    shown = "?" if s.best is None else round(s.best * 100)
    return SafeString(
        f'<span class="mark{level}" title="{n}: best {best}, last {last}"><span aria-hidden="true">{shown}</span>'
        f'<span class="sr-only">quiz {n}: best {best}, last {last};</span></span>'
    )


BEHIND = mark_safe(' class="behind"')  # the attribute of a roster row whose student missed a deadline


def roster_row(row, quizzes: Iterable[str], url: str, now) -> SafeString:
    """One roster row (a dashboard.selectors.StudentRow): the student's numbers, one mark per quiz in
    `quizzes`' order, the link to their page."""
    marks = format_html_join("", "{}", ((_score_mark(n, s),) for n, s in enumerate(row.score_list(quizzes), start=1)))
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
        "–" if row.best_error is None else fixed(row.best_error, 4),
        ago(row.last_activity, now),
    )  # fmt: skip


# ---------------------------------------------------------------- the questions page


@functools.cache
def _too_few_tests(min_tests: int) -> SafeString:
    return format_html(
        '<span class="muted" title="Given from {} handed-in tests with the question on">too few tests</span>', min_tests
    )


def question_row(s, *, min_tests: int) -> SafeString:
    """One row of the questions page (a dashboard.questions.QuestionStats): the numbers first, then the
    question and its wrong answers, which wrap. `min_tests`: below it, no discrimination is given."""
    wrong = (
        format_html_join(
            mark_safe("<br>"),
            '{} <span class="muted">×{}</span>',
            ((clip(text, 80), n) for text, n in s.wrong),
        )
        if s.wrong
        else "–"
    )
    if s.discrimination is not None:
        discrimination = fixed(s.discrimination, 2)
    else:  # too few tests, or nobody's score varies
        discrimination = _too_few_tests(min_tests) if s.attempts < min_tests else "–"
    return format_html(
        "<tr>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        "      <td>{}</td>\n"
        '      <th scope="row" class="wrap question-text">{}<br><span class="muted">{} · <code>{}</code></span></th>\n'
        '      <td class="wrap wrong-answers">{}</td>\n'
        "    </tr>",
        percent(s.facility), discrimination, s.attempts, clip(s.prompt, 140), s.section, s.slug,
        wrong,
    )  # fmt: skip


# ---------------------------------------------------------------- the experiments page

STOPPING = mark_safe(' <span class="muted">(stopping)</span>')


def job_rows(jobs, *, job_url: Callable[[int], str], cancel_url: Callable[[int], str], cancel_form: str):
    """The class experiments page's rows. A live job's Cancel button posts the page's one form,
    `cancel_form` (its id; the template writes it with its CSRF token), to that job's cancel URL."""
    rows = []
    for job in jobs:
        stopping = job.cancel_requested and job.state == JobState.RUNNING
        cancel = ""
        if job.state in LIVE_STATES and not job.cancel_requested:
            cancel = format_html(
                '<button type="submit" form="{}" formaction="{}" class="small secondary" data-confirm="Stop this '
                'experiment of {}? What it has trained so far is lost.">Cancel</button>',
                cancel_form, cancel_url(job.pk), job.owner.username,
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
                "–" if job.error_rate is None else fixed(job.error_rate, 4),
                f"{created:%b}", created.day, f"{created:%H:%M}", cancel,
            )
        )  # fmt: skip
    return rows
