"""The class pages' markup written in Python (dashboard.markup): the same escaping as Django's helpers,
the numbers as floatformat writes them, and each table row as the template it stands for would
write it."""

import dataclasses
import random
import re
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils import timezone

from dashboard import markup, selectors
from dashboard.markup import ago, clip, fixed
from dashboard.questions import QuestionStats
from dashboard.selectors import QuizScore, RosterUser, StudentRow
from mlworker.models import JobState
from mlworker.services import job_submit
from tests.dashboard.support import job_end

SCRIPT = '<script>alert("x")</script>'


def squeeze(html):
    """Markup without the white space between tags, where a template's layout and Python's differ."""
    return re.sub(r">\s+<", "><", html).strip()


# ---------------------------------------------------------------- the helpers


def test_fixed_writes_what_floatformat_1_writes():
    rng = random.Random(7)
    values = [0, 0.0, -0.0, 1, 34, 12.25, 12.35, 0.05, 0.15, 2.675, -0.04, -1.25, 599.95, 1e-7, 123456.789]
    values += [rng.uniform(-50, 700) for _ in range(2000)] + [round(rng.uniform(0, 700), 2) for _ in range(2000)]
    values += [i / 20 for i in range(-200, 14000)]  # every half-way case of one decimal in a chart's range
    for v in values:
        assert fixed(v) == floatformat(v, 1), v


def test_fixed_writes_error_rates_as_floatformat_4_does():
    rng = random.Random(11)
    values = [0, 1, 0.0041, 0.00005, 0.00015, 1e-6, 0.12345, 0.99995, 0.5]
    values += [rng.random() for _ in range(3000)] + [rng.random() / 100 for _ in range(1000)]
    values += [i / 20000 for i in range(0, 20001)]  # every half-way case of four decimals from 0 to 1
    for v in values:
        assert fixed(v, 4) == floatformat(v, 4), v


def test_fixed_writes_nothing_for_what_is_not_a_number():
    assert fixed(None) == "" and fixed("x") == ""


def test_the_markup_helpers_write_what_djangos_write():
    from django.utils import html as django_html
    from django.utils.safestring import mark_safe
    from django.utils.translation import gettext_lazy

    args = (SCRIPT, "Tom & Jerry's", mark_safe("<b>kept</b>"), 3, 2.5, -0.0, None, True, gettext_lazy("Log in"), "")
    template = "<p>" + "|{}" * len(args) + "</p>"
    assert markup.format_html(template, *args) == django_html.format_html(template, *args)
    rows = [(SCRIPT, 1), ("a&b", 2.25)]
    for sep in ("", ", ", "<br>", mark_safe("<br>")):
        ours = markup.format_html_join(sep, "<i>{}</i>{}", rows)
        assert ours == django_html.format_html_join(sep, "<i>{}</i>{}", rows)
        assert hasattr(ours, "__html__")  # safe: a template includes it as it is


@pytest.mark.parametrize(
    "seconds, text",
    [(59, "just now"), (60, "1 minute ago"), (3599, "59 minutes ago"), (3600, "1 hour ago"),
     (2 * 86400 + 5000, "2 days ago"), (14 * 86400, "2 weeks ago"), (400 * 86400, "1 year ago")],
)  # fmt: skip
def test_last_seen_reads_in_its_largest_whole_unit(seconds, text):
    now = timezone.now()
    assert ago(now - timedelta(seconds=seconds), now) == text
    assert ago(None, now) == "never"


def test_clip_cuts_long_text_with_an_ellipsis_and_leaves_short_text():
    assert clip("short", 10) == "short" and clip("x" * 10, 10) == "x" * 10
    assert clip("a long sentence here", 8) == "a long…" and len(clip("y" * 50, 20)) == 20


# ---------------------------------------------------------------- the roster and the questions page

# A roster row as a template would write it (markup.roster_row writes it itself, for speed). The mark's
# shade and "last seen" come worked out, as the template has no filter for them (see ago's own test).
ROSTER_ROW_TEMPLATE = """{% load quiz_tags %}<tr{% if row.missed %} class="behind"{% endif %}>
      <th scope="row"><a href="{{ url }}">{{ row.user.username }}</a>{% if row.missed %} <span class="tag bad" title="Missed: {{ row.missed|join:", " }}">missed {{ row.missed|length }}</span>{% endif %}</th>
      <td>{{ row.sections_read }}</td>
      <td>{{ row.cards_reviewed }}</td>
      <td>{{ row.attempts }}</td>
      <td>{{ row.mean_best|percent }}</td>
      <td class="marks">{% for s, shade in marks %}{% if not s.attempts %}<span class="mark" title="{{ forloop.counter }}: no test yet"><span aria-hidden="true">–</span><span class="sr-only">quiz {{ forloop.counter }}: no test;</span></span>{% else %}<span class="mark{% if shade is not None %} m{{ shade }}{% endif %}" title="{{ forloop.counter }}: best {{ s.best|percent }}, last {{ s.last|percent }}"><span aria-hidden="true">{% if s.best is None %}?{% else %}{% widthratio s.best 1 100 %}{% endif %}</span><span class="sr-only">quiz {{ forloop.counter }}: best {{ s.best|percent }}, last {{ s.last|percent }};</span></span>{% endif %}{% endfor %}</td>
      <td>{{ row.jobs }}</td>
      <td>{% if row.best_error is None %}–{% else %}{{ row.best_error|floatformat:4 }}{% endif %}</td>
      <td>{{ seen }}</td>
    </tr>"""  # noqa: E501


def test_a_roster_row_says_what_the_template_said():
    now = timezone.now()
    quizzes = ["history", "jargon", "chapter"]
    rows = [
        StudentRow(
            user=RosterUser(7, f"{SCRIPT} & Jerry's", "", "", ""), sections_read=3, cards_reviewed=12, attempts=4,
            jobs=2, best_error=0.123456, last_activity=now - timedelta(days=3),
            scores={"history": QuizScore(2, 0.3, 0.125), "chapter": QuizScore(1, None, None)},
            missed=["jargon", "<b>chapter</b>"], mean_best=0.3,
        ),
        StudentRow(
            user=RosterUser(8, "ann", "Ann", "Lee", "a@example.org"), sections_read=0, cards_reviewed=0, attempts=0,
            jobs=0, best_error=None, last_activity=None,
        ),
    ]  # fmt: skip
    for row in rows:
        scores = row.score_list(quizzes)
        shades = [None if s.best is None else int(s.best * 10 + 1e-9) for s in scores]
        url = f"/classes/1/students/{row.user.pk}/?a=1&b=2"
        context = {"row": row, "marks": list(zip(scores, shades)), "url": url, "seen": ago(row.last_activity, now)}
        expected = Template(ROSTER_ROW_TEMPLATE).render(Context(context))
        assert squeeze(markup.roster_row(row, quizzes, url, now)) == squeeze(expected)
    written = markup.roster_row(rows[0], quizzes, "/x/", now)
    assert "<script" not in written and "<b>" not in written and 'class="mark m3"' in written


QUESTION_ROW_TEMPLATE = """{% load quiz_tags %}<tr>
      <td>{{ s.facility|percent }}</td>
      <td>{% if s.discrimination is not None %}{{ s.discrimination|floatformat:2 }}{% elif s.attempts < min_tests %}<span class="muted" title="Given from {{ min_tests }} handed-in tests with the question on">too few tests</span>{% else %}–{% endif %}</td>
      <td>{{ s.attempts }}</td>
      <th scope="row" class="wrap question-text">{{ s.prompt|truncatechars:140 }}<br><span class="muted">{{ s.section }} · <code>{{ s.slug }}</code></span></th>
      <td class="wrap wrong-answers">{% for text, n in s.wrong %}{{ text|truncatechars:80 }} <span class="muted">×{{ n }}</span>{% if not forloop.last %}<br>{% endif %}{% empty %}–{% endfor %}</td>
    </tr>"""  # noqa: E501


def test_a_question_row_says_what_the_template_said():
    long = "Why" + "y" * 200 + f" {SCRIPT}?"
    stats = [
        QuestionStats(1, "q-one", "Sections & such", (1, 1), long, attempts=12, facility=0.734, discrimination=0.4167,
                      wrong=[("x" * 100, 3), (f"{SCRIPT} & more", 2)]),
        QuestionStats(2, "q-two", "History", (1, 2), "Short?", attempts=4, facility=0.5),  # too few tests
        QuestionStats(3, "q-three", "History", (1, 3), "Even?", attempts=15, facility=1.0),  # nobody's score varies
    ]  # fmt: skip
    for s in stats:
        expected = Template(QUESTION_ROW_TEMPLATE).render(Context({"s": s, "min_tests": 10}))
        assert squeeze(markup.question_row(s, min_tests=10)) == squeeze(expected)
    assert "too few tests" in markup.question_row(stats[1], min_tests=10)


# ---------------------------------------------------------------- the experiments page


# The class experiments page's rows as a template would write them (the view writes them itself, for
# speed; this is the reference its rows must equal).
JOB_ROW_TEMPLATE = """{% for job in jobs %}
    <tr>
      <td><a href="{{ job.get_absolute_url }}">#{{ job.pk }}</a></td>
      <td>{{ job.owner.username }}</td>
      <td><span class="state state-{{ job.state }}">{{ job.get_state_display }}</span>{% if job.cancel_requested and job.state == "running" %} <span class="muted">(stopping)</span>{% endif %}</td>
      <td class="wrap">{{ job.arch }}{% if not job.pretrained %} (from scratch){% endif %}, {{ job.dataset_label }}, {{ job.epochs }} epoch{{ job.epochs|pluralize }}, {{ job.image_size }} px, batch {{ job.batch_size }}</td>
      <td>{% if job.error_rate is not None %}{{ job.error_rate|floatformat:4 }}{% else %}–{% endif %}</td>
      <td>{{ job.created_at|date:"M j, H:i" }}</td>
      <td>{% if job.state in live and not job.cancel_requested %}<button type="submit" form="job-cancel" formaction="{% url 'dashboard:class_job_cancel' classroom.pk job.pk %}" class="small secondary" data-confirm="Stop this experiment of {{ job.owner.username }}? What it has trained so far is lost.">Cancel</button>{% endif %}</td>
    </tr>
{% endfor %}"""  # noqa: E501


def test_the_experiments_rows_say_what_the_template_said(classroom, instructor, student, tiny_settings):
    from mlworker.models import LIVE_STATES
    from mlworker.services import job_cancel, job_claim

    made = []
    for state, changes, error in [
        (JobState.SUCCEEDED, {"pretrained": False, "epochs": 1}, 0.123456),
        (JobState.FAILED, {"epochs": 3}, None),
        (JobState.CANCELLED, {}, None),
    ]:
        job = job_submit(user=student, job_settings=dataclasses.replace(tiny_settings, **changes))
        job_end(job, state, **({"error_rate": error} if error is not None else {}))
        made.append(job)
    stopping = job_submit(user=student, job_settings=tiny_settings)
    job_claim(job_id=stopping.pk, worker="tests")
    job_cancel(job=stopping, by=instructor)
    made += [stopping, job_submit(user=student, job_settings=tiny_settings)]  # the last one queued
    jobs = list(selectors.class_jobs(classroom=classroom))
    assert len(jobs) == 5 and {j.state for j in jobs} == {"succeeded", "failed", "cancelled", "running", "queued"}

    expected = Template(JOB_ROW_TEMPLATE).render(Context({"jobs": jobs, "classroom": classroom, "live": LIVE_STATES}))
    written = "".join(
        markup.job_rows(
            jobs,
            job_url=markup.url_maker(lambda pk: reverse("mlworker:job", args=[pk])),
            cancel_url=markup.url_maker(lambda pk: reverse("dashboard:class_job_cancel", args=[classroom.pk, pk])),
            cancel_form="job-cancel",
        )
    )

    assert squeeze(written) == squeeze(expected)
    assert written.count("(stopping)") == 1 and written.count("Cancel</button>") == 1
    assert "csrfmiddlewaretoken" not in written  # the page's one form carries the token
    assert "(from scratch), " in written and " 1 epoch, " in written and "0.1235" in written
