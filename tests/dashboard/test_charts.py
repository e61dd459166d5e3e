"""The class pages' charts: the numbers behind them, their layout, and the SVG the pages draw."""

from datetime import date
from types import SimpleNamespace

import pytest
from django.urls import reverse

from accounts import services
from courses.models import Section
from courses.services import section_mark_read
from dashboard import charts
from dashboard.selectors import QuizScore
from mlworker.models import JobState, TrainingJob
from mlworker.services import job_submit
from tests.dashboard import reference
from tests.dashboard.support import job_end


def d(day):
    return date(2025, 3, day)


def job(pk, username, error_rate, *, dataset="silhouettes-catdog", arch="efficientnet_lite0", pretrained=True,
        state="succeeded"):  # fmt: skip
    return SimpleNamespace(
        pk=pk, owner=SimpleNamespace(username=username), error_rate=error_rate, dataset=dataset, arch=arch,
        pretrained=pretrained, state=state,
    )  # fmt: skip


# ---------------------------------------------------------------- pure functions


def test_it_counts_scores_into_ten_bins_with_100_percent_in_the_last():
    bins = reference.score_bins([0, 0.05, 0.1, 0.3, 0.55, 0.999, 1.0, None])
    assert [b.count for b in bins] == [2, 1, 0, 1, 0, 1, 0, 0, 0, 2]
    assert (bins[0].label, bins[9].label) == ("0%–10%", "90%–100%")
    assert (bins[3].lo, bins[3].hi) == (0.3, 0.4)


def test_it_rounds_an_axis_top_up_to_1_2_or_5_times_a_power_of_ten():
    assert [charts.nice_ceiling(x) for x in (0, 1, 3, 7, 10, 11, 45, 51)] == [1, 1, 5, 10, 10, 20, 50, 100]


def test_it_takes_each_students_best_score_per_quiz_and_skips_quizzes_nobody_took():
    scores = {
        1: {"history": QuizScore(2, 0.5, 0.25), "chapter": QuizScore(1, None, None)},
        2: {"history": QuizScore(1, 1.0, 1.0)},
    }
    assert reference.best_scores_by_quiz(scores, ["history", "jargon", "chapter"]) == {"history": [0.5, 1.0]}


def test_a_histogram_draws_one_bar_per_band_that_holds_someone():
    chart = reference.histogram_chart(id="h", title="History", scores=[0, 0.05, 0.1, 0.3, 0.55, 0.999, 1.0])
    # Plot: x from 34 to 290 (25.6 per band), y from 144 (0) up to 24 (the top, 2 students).
    assert len(chart.bars) == 5
    first, second = chart.bars[0], chart.bars[1]
    assert (first.x, first.y, first.height) == (35, 24, 120)
    assert (second.x, second.y, second.height) == pytest.approx((60.6, 84, 60))
    assert first.width == pytest.approx(23.6)
    assert [(t.at, t.label) for t in chart.y_ticks] == [(144, "0"), (84, "1"), (24, "2")]
    assert [(t.label, t.anchor) for t in chart.x_ticks] == [("0%", "start"), ("50%", "middle"), ("100%", "end")]
    assert chart.summary == "History: best scores of 7 students in 10 bins; the most, 2, in 0%–10%."


def test_it_turns_daily_counts_into_running_totals_from_the_first_day_with_activity():
    rows = [(d(3), "read", 2), (d(5), "read", 1), (d(3), "tests", 1), (d(4), "jobs", 1), (d(5), "tests", 1),
            (d(3), "other", 9), (d(5), "read", 1)]  # fmt: skip
    days, totals = charts.cumulative_by_day(rows, end=d(6))
    assert days == [d(3), d(4), d(5), d(6)]
    assert totals == {"read": [2, 2, 4, 4], "tests": [1, 1, 2, 2], "jobs": [0, 1, 1, 1]}


def test_running_totals_reach_the_last_event_even_after_the_end_day_and_are_empty_without_events():
    days, totals = charts.cumulative_by_day([(d(5), "jobs", 1)], end=d(3))
    assert days == [d(5)] and totals["jobs"] == [1] and totals["read"] == [0]
    assert charts.cumulative_by_day([], end=d(3)) == ([], {"read": [], "tests": [], "jobs": []})


def test_the_activity_chart_places_each_day_and_total():
    rows = [(d(3), "read", 2), (d(5), "read", 1), (d(3), "tests", 1), (d(4), "jobs", 1), (d(5), "tests", 1)]
    chart = charts.activity_chart(id="a", title="Activity", rows=rows, end=d(6))
    # Plot: x from 44 to 584 (180 per day over 3 steps), y from 220 (0) up to 26 (5, the nice top above 3).
    read = chart.series[0]
    assert read.label == "sections read" and read.values == [2, 2, 3, 3]
    assert read.path == "M44.0,142.4 L224.0,142.4 L404.0,103.6 L584.0,103.6"
    assert [t.label for t in chart.x_ticks] == ["Mar 3", "Mar 4", "Mar 6"]
    assert [(t.at, t.label) for t in chart.y_ticks] == [(220, "0"), (26, "5")]
    assert chart.rows[0] == (d(3), [2, 1, 0])
    assert chart.summary == (
        "Activity, Mar 3 to Mar 6: running totals per day, reaching 3 sections read, "
        "2 tests handed in, 1 experiments that succeeded."
    )
    # A marker where a total changes and at both ends: days 3, 5 and 6 for the sections read.
    assert read.marks.count("<circle") == 3 and 'cx="404.0" cy="103.6"' in read.marks


def test_a_class_active_on_one_day_is_drawn_on_that_day_with_every_line_visible():
    # Everything happened on Dec 2: tests and experiments have the same values, so their lines coincide.
    rows = [(date(2025, 12, 2), "read", 3), (date(2025, 12, 2), "tests", 2), (date(2025, 12, 2), "jobs", 2)]
    chart = charts.activity_chart(id="a", title="Activity", rows=rows, end=date(2025, 12, 2))
    assert chart.days == [date(2025, 12, 2)] and [t.label for t in chart.x_ticks] == ["Dec 2"]
    tests, jobs = chart.series[1], chart.series[2]
    assert tests.values == jobs.values == [2]
    markup = chart.html()
    # Each series has a marker of its own shape at the shared point, so neither hides the other.
    assert markup.count('class="mark series-read"') == 1 and "<circle" in chart.series[0].marks
    assert 'class="mark series-tests" d="M44.0,142.4 m-4,-4 h8 v8' in tests.marks
    assert 'class="mark series-jobs" d="M44.0,142.4 m0,-3.5 l3.5,3.5' in jobs.marks


def test_it_groups_succeeded_jobs_by_data_architecture_and_weights_with_the_chapters_reference():
    jobs = [
        job(1, "ann", 0.2),
        job(2, "bob", 0.1),
        job(3, "ann", 0.33, pretrained=False),
        job(4, "cy", 0.004, dataset="pets", arch="resnet34"),
        job(5, "bob", None, state="failed"),
        job(6, "cy", 0.5, state="running"),
    ]
    strips = charts.error_strips(jobs, dataset_labels={"pets": "Pets"})
    assert [(s.title, s.error_rates, s.reference) for s in strips] == [
        ("Pets: resnet34, pretrained", [0.004], 0.0041),
        ("silhouettes-catdog: efficientnet_lite0, pretrained", [0.2, 0.1], None),
        ("silhouettes-catdog: efficientnet_lite0, from scratch", [0.33], None),
    ]
    assert strips[1].labels == ["#1 ann", "#2 bob"] and strips[1].best == 0.1


def test_the_error_chart_scales_to_a_round_maximum_and_spreads_dots():
    jobs = [job(1, "ann", 0.2), job(2, "bob", 0.1), job(3, "ann", 0.33, pretrained=False),
            job(4, "cy", 0.004, dataset="pets", arch="resnet34")]  # fmt: skip
    chart = charts.error_chart(id="e", title="Errors", jobs=jobs)
    # Highest rate 0.33, so the axis runs to 0.5 over x from 16 to 576 (560 units).
    assert chart.x_max == 0.5 and chart.height == 8 + 3 * 56 + 44
    assert [t.label for t in chart.x_ticks] == ["0", "0.25", "0.5"]
    pets, pretrained, scratch = chart.strips
    assert pets.reference_x == pytest.approx(16 + 560 * 0.0041 / 0.5)
    # The second strip starts at y=64; its dots sit around y=98, one line apart (7 units) each.
    assert [(dot.x, dot.y) for dot in pretrained.dots] == [(pytest.approx(240), 91), (pytest.approx(128), 98)]
    assert chart.n == 4 and "best 0.1000" in chart.summary
    assert charts.error_chart(id="e", title="Errors", jobs=[]).summary == "Errors: no experiment has succeeded yet."


# ---------------------------------------------------------------- pages


@pytest.mark.django_db
def test_the_dashboard_draws_each_quizs_scores_and_the_class_activity(
    client, classroom, instructor, student, student2, take_test
):
    take_test(student)  # 100%
    take_test(student2, tf_right=False)  # 50%
    section_mark_read(user=student, section=Section.objects.first())
    client.force_login(instructor)
    url = reverse("dashboard:class_dashboard", args=[classroom.pk])
    for query in ("", "?behind=60"):  # the filter narrows the roster, not the charts
        page = client.get(url + query).content.decode()
        assert page.count('role="img"') == 2  # the activity chart and one histogram (one quiz taken)
        assert page.count('<rect class="bar"') == 2  # the 50% band and the 90–100% band
        assert page.count('<path class="line series-') == 3
        assert "best scores of 2 students" in page
        assert "reaching 1 sections read, 2 tests handed in, 0 experiments that succeeded" in page


@pytest.mark.django_db
def test_an_empty_class_says_there_is_nothing_to_draw(client, instructor):
    classroom = services.classroom_create(by=instructor, name="Empty")
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_dashboard", args=[classroom.pk])).content.decode()
    assert "<svg" not in page and "No test handed in yet." in page and "Nothing yet" in page
    page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    assert "<svg" not in page and "No experiment of this class has succeeded yet." in page


@pytest.mark.django_db
def test_the_jobs_page_draws_one_dot_per_succeeded_job_of_the_class(
    client, classroom, instructor, student, student2, other_student, tiny_settings
):
    def finished(user, error_rate, state=JobState.SUCCEEDED):
        j = job_submit(user=user, job_settings=tiny_settings)
        job_end(j, state, error_rate=error_rate)

    finished(student, 0.25)
    finished(student, 0.125)
    finished(student2, 0.5)
    finished(student2, None, JobState.FAILED)
    finished(other_student, 0.01)  # another class's
    client.force_login(instructor)
    page = client.get(reverse("dashboard:class_jobs", args=[classroom.pk])).content.decode()
    assert page.count('<circle class="dot job"') == 3
    assert "one dot per experiment that succeeded (3)" in page and "best 0.1250" in page
    assert f"#{TrainingJob.objects.get(owner=student2, state=JobState.SUCCEEDED).pk} student2: 0.5000" in page


# ---------------------------------------------------------------- markup


SCRIPT = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def test_the_charts_escape_what_comes_from_data():
    histogram = reference.histogram_chart(id="h", title=f"{SCRIPT} & Jerry's", scores=[0.5])
    activity = charts.activity_chart(id="a", title=SCRIPT, rows=[(d(3), "read", 1)], end=d(4))
    errors = charts.error_chart(
        id="e", title="Errors", jobs=[job(1, SCRIPT, 0.1, dataset="<b>pets</b>")], dataset_labels={}
    )
    for chart in (histogram, activity, errors):
        markup = chart.html()
        assert "<script" not in markup and "<b>" not in markup, markup
        assert ESCAPED in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Jerry&#x27;s" in histogram.html()
    assert "&lt;b&gt;pets&lt;/b&gt;: efficientnet_lite0, pretrained" in errors.html()


def test_a_chart_keeps_its_picture_its_description_and_its_table_of_numbers():
    chart = reference.histogram_chart(id="h", title="History", scores=[0.05, 0.55, 0.56])
    markup = chart.html()
    assert markup.startswith('<figure class="chart small">') and markup.endswith("</figure>")
    assert '<svg viewBox="0 0 300 180" role="img" aria-labelledby="h-title h-desc">' in markup
    assert '<figcaption id="h-title">History</figcaption>' in markup and '<desc id="h-desc">History: best' in markup
    assert '<rect class="bar" x="35.0" y="84.0" width="23.6" height="60.0"><title>0%–10%: 1</title></rect>' in markup
    assert "<tr><td>50%–60%</td><td>2</td></tr>" in markup
    assert markup.count("<tr><td>") == 10  # every band, the empty ones too


def test_a_big_groups_close_experiments_share_a_dot_that_says_how_many():
    jobs = [
        SimpleNamespace(pk=i, state="succeeded", error_rate=0.1 + (i % 50) / 1000, dataset="pets", arch="resnet34",
                        pretrained=True, owner=SimpleNamespace(username=f"s{i}"))
        for i in range(500)
    ]  # fmt: skip
    chart = charts.error_chart(id="e", title="Errors", jobs=jobs)
    (strip,) = chart.strips
    assert len(strip.error_rates) == 500 and len(strip.dots) < 50  # 50 rates within 0.05, a few px apart
    counted = [int(d.label.split()[0]) for d in strip.dots if "experiments" in d.label]
    assert sum(counted) + sum(1 for d in strip.dots if "experiments" not in d.label) == 500
    html = chart.html()
    assert "or several close together" in html and html.count('class="dot job"') == len(strip.dots)
    small = charts.error_chart(id="e", title="Errors", jobs=jobs[:5])
    assert len(small.strips[0].dots) == 5 and "or several" not in small.html()
