"""Read the chapter's content tree (Markdown sections, glossary YAML) into plain records.

Parsing knows nothing of the database; every problem is a ContentError naming file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Section pages live at /chapter/<slug>/, beside these pages of the chapter's own.
RESERVED_SECTION_SLUGS = {"glossary", "flashcards", "search"}


class ContentError(Exception):
    def __init__(self, path: Path, line: int, message: str):
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}")


@dataclass
class SectionRecord:
    slug: str
    title: str
    order: int
    objectives: list[str]
    body: str
    path: Path


@dataclass
class TermRecord:
    slug: str
    term: str
    aliases: list[str]
    short: str
    definition: str
    example: str
    related: list[str]
    section: str | None
    path: Path
    line: int
    extra: dict = field(default_factory=dict)


def _yaml_error_line(exc: yaml.YAMLError, offset: int = 0) -> int:
    mark = getattr(exc, "problem_mark", None)
    return (mark.line + 1 + offset) if mark else 1 + offset


def read_section(path: Path) -> SectionRecord:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, 1, "front matter missing: the file must start with a line '---'")
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise ContentError(path, 1, "front matter is not closed by a line '---'") from None
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise ContentError(path, _yaml_error_line(exc, offset=1), f"front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ContentError(path, 2, "front matter must be a mapping of keys to values")

    def line_of(key: str) -> int:
        for i, line in enumerate(lines[1:end], start=2):
            if line.startswith(f"{key}:"):
                return i
        return 2

    for key in ("slug", "title", "order"):
        if key not in meta:
            raise ContentError(path, 2, f"front matter lacks '{key}'")
    slug = str(meta["slug"])
    if not SLUG_RE.match(slug):
        raise ContentError(path, line_of("slug"), f"slug {slug!r} must be lowercase words joined by hyphens")
    if slug in RESERVED_SECTION_SLUGS:
        raise ContentError(path, line_of("slug"), f"slug {slug!r} is taken by a page of the site; choose another")
    if not isinstance(meta["order"], int) or meta["order"] < 1:
        raise ContentError(path, line_of("order"), "order must be a positive whole number")
    objectives = meta.get("objectives", [])
    if not isinstance(objectives, list) or not all(isinstance(o, str) for o in objectives):
        raise ContentError(path, line_of("objectives"), "objectives must be a list of sentences")
    unknown = set(meta) - {"slug", "title", "order", "objectives"}
    if unknown:
        raise ContentError(path, 2, f"unknown front matter keys: {', '.join(sorted(unknown))}")
    body = "\n".join(lines[end + 1 :]).strip() + "\n"
    return SectionRecord(slug, str(meta["title"]), meta["order"], objectives, body, path)


def read_glossary(path: Path) -> list[TermRecord]:
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContentError(path, _yaml_error_line(exc), f"not valid YAML: {exc}") from None
    if not isinstance(data, list):
        raise ContentError(path, 1, "the glossary must be a list of terms")
    records = []
    for item, item_node in zip(data, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if not isinstance(item, dict):
            raise ContentError(path, line, "each glossary entry must be a mapping")
        for key in ("slug", "term", "short", "definition"):
            if not item.get(key):
                raise ContentError(path, line, f"glossary entry lacks '{key}'")
        if not SLUG_RE.match(str(item["slug"])):
            raise ContentError(path, line, f"slug {item['slug']!r} must be lowercase words joined by hyphens")
        aliases = item.get("aliases") or [str(item["term"]).lower()]
        records.append(
            TermRecord(
                slug=str(item["slug"]),
                term=str(item["term"]),
                aliases=[str(a).lower() for a in aliases],
                short=str(item["short"]).strip(),
                definition=str(item["definition"]).strip(),
                example=str(item.get("example", "")).strip(),
                related=[str(r) for r in item.get("related", [])],
                section=item.get("section"),
                path=path,
                line=line,
            )
        )
    return records
