"""`manage.py grade_answers`: a batch of free-text answers through the site's own grading path,
one clear error per bad line and the rest graded anyway."""

import json
import sys

import pytest
from django.core.management import CommandError, call_command

from quizzes.models import Question
from quizzes.services import free_text_grade

pytestmark = pytest.mark.django_db

LINES = [
    json.dumps({"question": "t-free", "answer": "It memorises the training data.", "id": 7}),
    "",
    json.dumps({"question": "t-free", "answer": "UNSURE"}),
    "{not json",
    json.dumps({"question": "no-such-question", "answer": "x"}),
    json.dumps({"question": "t-single", "answer": "a"}),
    json.dumps({"question": "t-free"}),
    json.dumps(["t-free", "a list"]),
    json.dumps({"question": "t-free", "answer": "BOOM"}),
    json.dumps({"question": "t-free", "answer": "   "}),
    json.dumps({"question": "t-free", "answer": "深層学習は WRONG"}, ensure_ascii=False),
]


def run(tmp_path, lines, capsys):
    source = tmp_path / "answers.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "graded.jsonl"
    with pytest.raises(CommandError, match=r"6 line\(s\) could not be graded"):
        call_command("grade_answers", str(source), output=out)
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()], capsys.readouterr().err


def test_it_grades_each_line_and_reports_each_bad_one(tmp_path, capsys, mini_bank, fake_grader):
    results, err = run(tmp_path, LINES, capsys)
    assert len(results) == 10  # every non-blank line has an output line, in order
    assert results[0] == {
        "question": "t-free", "answer": "It memorises the training data.", "id": 7,
        "score": 1.0, "verdict": "correct", "confidence": 0.939, "needs_review": False,
    }  # fmt: skip
    assert (results[1]["verdict"], results[1]["needs_review"]) == ("needs_review", True)
    assert results[2] == {"line": 4, "error": results[2]["error"]} and "not valid JSON" in results[2]["error"]
    assert results[3]["error"] == "no question with slug 'no-such-question'"
    assert results[4]["error"] == "question 't-single' is single, not free_text"
    assert results[5]["error"] == '"answer" must be text'
    assert "expected an object" in results[6]["error"]
    assert results[7]["error"] == "the grader failed on this answer: RuntimeError: the grader fell over"
    assert (results[8]["score"], results[8]["verdict"]) == (0.0, "incorrect")  # blank: marked without the model
    assert results[9]["answer"] == "深層学習は WRONG" and results[9]["verdict"] == "needs_review"  # not English
    assert "line 4: not valid JSON" in err and "line 5: no question with slug 'no-such-question'" in err
    assert "4 graded, 6 with errors" in err


def test_it_uses_the_same_grading_as_the_site(tmp_path, capsys, mini_bank, fake_grader, settings):
    settings.JOURNEY_REVIEW_CONFIDENCE = 0.2
    question = Question.objects.get(slug="t-free")
    text = "HESITANT answer"
    site = free_text_grade(question, text)
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"question": "t-free", "answer": text}) + "\n")
    call_command("grade_answers", str(source))
    (line,) = capsys.readouterr().out.splitlines()
    result = json.loads(line)
    assert (result["score"], result["verdict"], result["confidence"]) == (site.score, site.verdict, site.confidence)
    assert result["needs_review"] is False  # 0.52 is above this threshold; the default 0.6 would send it to review
    assert fake_grader.calls[-1][0] == question.free_text_spec() and fake_grader.calls[-1][1] == text


def test_a_long_answer_is_cut_to_the_sites_limit_before_grading(tmp_path, capsys, mini_bank, fake_grader, settings):
    settings.JOURNEY_ANSWER_MAX_CHARS = 100
    source = tmp_path / "long.jsonl"
    source.write_text(json.dumps({"question": "t-free", "answer": "word " * 20_000}) + "\n")
    call_command("grade_answers", str(source))
    assert len(fake_grader.calls[-1][1]) <= 100


def test_it_says_so_when_the_file_or_the_grader_is_missing(tmp_path, mini_bank, monkeypatch):
    with pytest.raises(CommandError, match="cannot read"):
        monkeypatch.setitem(sys.modules, "quizzes.grading", type(sys)("quizzes.grading"))
        call_command("grade_answers", str(tmp_path / "missing.jsonl"))
    monkeypatch.setitem(sys.modules, "quizzes.grading", None)  # an import of it now fails
    with pytest.raises(CommandError, match="the free-text grader is not available"):
        call_command("grade_answers", str(tmp_path / "missing.jsonl"))
