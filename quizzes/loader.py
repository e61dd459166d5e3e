"""Read the question bank (content/chapter-1/questions/<section-slug>.yaml) into checked records.

Like courses.loader it knows nothing of the database: every problem is a ContentError naming
file and line. `question_problems` is shared with the admin form, so both refuse the same things.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from courses.loader import SLUG_RE, ContentError

TYPES = ("single", "multiple", "true_false", "numeric", "matching", "fill_blank", "free_text")
COMMON_KEYS = {"slug", "type", "source_ref", "prompt", "terms", "explanation"}
TYPE_KEYS = {
    "single": {"options"},
    "multiple": {"options"},
    "true_false": {"answer"},
    "numeric": {"answer", "tolerance", "unit"},
    "matching": {"pairs"},
    "fill_blank": {"answers", "case_sensitive"},
    "free_text": {"reference_answer", "key_points", "misconceptions"},
}
BLANK = "____"
_FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")


@dataclass
class QuestionRecord:
    slug: str
    type: str
    section: str
    order: int
    data: dict
    path: Path
    line: int
    key_lines: dict[str, int]


def _is_text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def blank_is_in_code(prompt: str) -> bool:
    """True when the prompt's blank sits in a code block or code span: then case matters."""
    for fence in _FENCE_RE.finditer(prompt):
        if BLANK in fence.group(0):
            return True
    outside = _FENCE_RE.sub("", prompt)
    return any(BLANK in span.group(0) for span in _CODE_SPAN_RE.finditer(outside))


def question_problems(data: dict) -> list[tuple[str, str]]:
    """Every reason this question cannot be asked, as (field, message) pairs; [] when it can."""
    problems: list[tuple[str, str]] = []

    def bad(field: str, message: str):
        problems.append((field, message))

    qtype = data.get("type")
    if qtype not in TYPES:
        bad("type", f"unknown question type {qtype!r}: use one of {', '.join(TYPES)}")
        return problems
    slug = data.get("slug")
    if not _is_text(slug):
        bad("slug", "the question lacks 'slug'")
    elif not SLUG_RE.match(str(slug)):
        bad("slug", f"slug {slug!r} must be lowercase words joined by hyphens")
    for key in ("prompt", "explanation"):
        if not _is_text(data.get(key)):
            bad(key, f"the question lacks '{key}'")
    terms = data.get("terms", [])
    if not isinstance(terms, list) or not all(_is_text(t) for t in terms):
        bad("terms", "terms must be a list of glossary slugs")
    if "source_ref" in data and not isinstance(data["source_ref"], str):
        bad("source_ref", "source_ref must be text")
    allowed = COMMON_KEYS | TYPE_KEYS[qtype]
    for key in sorted(set(data) - allowed):
        other = [t for t, keys in TYPE_KEYS.items() if key in keys]
        hint = f" (it belongs to {', '.join(other)} questions)" if other else ""
        bad(key, f"field '{key}' does not apply to {qtype} questions{hint}")

    if qtype in ("single", "multiple"):
        _check_options(data, qtype, bad)
    elif qtype == "true_false":
        if not isinstance(data.get("answer"), bool):
            bad("answer", "a true_false question needs 'answer: true' or 'answer: false'")
    elif qtype == "numeric":
        if not _is_number(data.get("answer")):
            bad("answer", "a numeric question needs a number as its 'answer'")
        tolerance = data.get("tolerance", 0)
        if not _is_number(tolerance) or tolerance < 0:
            bad("tolerance", "tolerance must be a number, 0 or more")
        if "unit" in data and not isinstance(data["unit"], str):
            bad("unit", "unit must be text")
    elif qtype == "matching":
        _check_pairs(data, bad)
    elif qtype == "fill_blank":
        answers = data.get("answers")
        if not isinstance(answers, list) or not answers or not all(_is_text(a) for a in answers):
            bad("answers", "a fill_blank question needs 'answers': a list of accepted answers")
        if _is_text(data.get("prompt")) and BLANK not in data["prompt"]:
            bad("prompt", f"a fill_blank prompt must show the blank as {BLANK}")
        if "case_sensitive" in data and not isinstance(data["case_sensitive"], bool):
            bad("case_sensitive", "case_sensitive must be true or false")
    elif qtype == "free_text":
        if not _is_text(data.get("reference_answer")):
            bad("reference_answer", "a free_text question needs a 'reference_answer'")
        points = data.get("key_points")
        if not isinstance(points, list) or not points or not all(_is_text(p) for p in points):
            bad("key_points", "a free_text question needs 'key_points': a list of sentences")
        wrong = data.get("misconceptions", [])
        if not isinstance(wrong, list) or not all(_is_text(m) for m in wrong):
            bad("misconceptions", "misconceptions must be a list of sentences")
    return problems


def _check_options(data, qtype, bad):
    options = data.get("options")
    if not isinstance(options, list) or len(options) < 2:
        bad("options", f"a {qtype} question needs 'options': a list of at least two")
        return
    keys = []
    for i, option in enumerate(options, start=1):
        if not isinstance(option, dict) or set(option) != {"key", "text", "correct"}:
            bad("options", f"option {i} must have exactly key, text and correct")
            return
        if not _is_text(str(option["key"])) or not _is_text(option["text"]):
            bad("options", f"option {i} needs a key and a text")
            return
        if not isinstance(option["correct"], bool):
            bad("options", f"option {i}: correct must be true or false")
            return
        keys.append(str(option["key"]))
    if len(set(keys)) != len(keys):
        bad("options", "option keys must differ from each other")
    n_correct = sum(1 for o in options if o["correct"])
    if qtype == "single" and n_correct != 1:
        bad("options", f"a single question needs exactly one correct option, found {n_correct}")
    if qtype == "multiple" and n_correct < 1:
        bad("options", "a multiple question needs at least one correct option")


def _check_pairs(data, bad):
    pairs = data.get("pairs")
    if not isinstance(pairs, list) or len(pairs) < 2:
        bad("pairs", "a matching question needs 'pairs': a list of at least two")
        return
    for i, pair in enumerate(pairs, start=1):
        if not isinstance(pair, dict) or set(pair) != {"left", "right"}:
            bad("pairs", f"pair {i} must have exactly left and right")
            return
        if not _is_text(str(pair["left"])) or not _is_text(str(pair["right"])):
            bad("pairs", f"pair {i} needs a left and a right")
            return
    for side in ("left", "right"):
        values = [str(p[side]) for p in pairs]
        if len(set(values)) != len(values):
            bad("pairs", f"two pairs have the same {side} side, so the matching would be ambiguous")


def normalise(data: dict) -> dict:
    """The stored form of a checked question: every field present, text as str."""
    qtype = data["type"]
    out = {
        "type": qtype,
        "source_ref": str(data.get("source_ref", "")),
        "prompt": data["prompt"].strip() + "\n",
        "explanation": data["explanation"].strip(),
        "options": [],
        "answer": None,
        "tolerance": 0.0,
        "unit": "",
        "pairs": [],
        "answers": [],
        "case_sensitive": True,
        "reference_answer": "",
        "key_points": [],
        "misconceptions": [],
    }
    if qtype in ("single", "multiple"):
        out["options"] = [
            {"key": str(o["key"]), "text": str(o["text"]), "correct": o["correct"]} for o in data["options"]
        ]
    elif qtype == "true_false":
        out["answer"] = data["answer"]
    elif qtype == "numeric":
        out["answer"] = data["answer"]
        out["tolerance"] = float(data.get("tolerance", 0))
        out["unit"] = str(data.get("unit", ""))
    elif qtype == "matching":
        out["pairs"] = [{"left": str(p["left"]), "right": str(p["right"])} for p in data["pairs"]]
    elif qtype == "fill_blank":
        out["answers"] = [str(a) for a in data["answers"]]
        out["case_sensitive"] = data.get("case_sensitive", blank_is_in_code(data["prompt"]))
    elif qtype == "free_text":
        out["reference_answer"] = data["reference_answer"].strip()
        out["key_points"] = [str(p) for p in data["key_points"]]
        out["misconceptions"] = [str(m) for m in data.get("misconceptions", [])]
    return out


def read_question_file(path: Path) -> list[QuestionRecord]:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ContentError(path, mark.line + 1 if mark else 1, f"not valid YAML: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ContentError(path, 1, "a question file must be a list of questions")
    records = []
    for order, (item, item_node) in enumerate(zip(data, node.value, strict=True), start=1):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            raise ContentError(path, line, "each question must be a mapping of fields")
        key_lines = {k.value: k.start_mark.line + 1 for k, _ in item_node.value}
        problems = question_problems(item)
        if problems:
            field, message = problems[0]
            label = f"question {item['slug']!r}: " if _is_text(item.get("slug")) else ""
            raise ContentError(path, key_lines.get(field, line), label + message)
        records.append(
            QuestionRecord(
                slug=item["slug"],
                type=item["type"],
                section=path.stem,
                order=order,
                data=item,
                path=path,
                line=line,
                key_lines=key_lines,
            )
        )
    return records
