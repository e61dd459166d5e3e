"""The CSV's own cell writing, read back by Python's csv module as a spreadsheet would read it."""

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from django.contrib.auth import get_user_model

from dashboard.export import UtcText, _text


@pytest.mark.parametrize(
    "text, read_back",
    [
        ("ann", "ann"),
        ("Ann, the second", "Ann, the second"),
        ('say "hi"', 'say "hi"'),
        ("two\nlines", "two\nlines"),
        ("cr\rhere", "cr\rhere"),
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1, or so", "'+1, or so"),
        ("-x", "'-x"),
        ("@me", "'@me"),
        ("\tTab", "'\tTab"),
        ("", ""),
        ("émile ünïcode", "émile ünïcode"),
    ],
)
def test_a_students_text_reads_back_as_one_cell_that_never_runs(text, read_back):
    line = f"{_text(text)},next\r\n"
    assert list(csv.reader(io.StringIO(line, newline=""))) == [[read_back, "next"]]


@pytest.mark.django_db
@pytest.mark.parametrize("microsecond", [0, 999999])
def test_the_database_writes_a_time_in_utc_to_the_second(make_user, microsecond):
    user = make_user("timed")
    user.date_joined = datetime(2026, 11, 27, 20, 25, 39, microsecond, tzinfo=timezone(timedelta(hours=1)))
    user.save()
    text = get_user_model().objects.filter(pk=user.pk).annotate(t=UtcText("date_joined")).values_list("t", flat=True)
    assert list(text) == ["2026-11-27 19:25:39"]
