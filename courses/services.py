"""Writes for the chapter: importing the content tree, marking sections read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from courses.loader import ContentError, read_glossary, read_section
from courses.models import GlossaryTerm, ReadingProgress, Section
from courses.rendering import render_markdown

DEFAULT_CONTENT_ROOT = settings.BASE_DIR / "content" / "chapter-1"


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)

    def lines(self):
        for label, items in (("created", self.created), ("updated", self.updated), ("deleted", self.deleted)):
            for item in items:
                yield f"{label}: {item}"
        yield (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.deleted)} deleted, {self.unchanged} unchanged"
        )


def _upsert(model, report: LoadReport, kind: str, slug: str, values: dict):
    obj = model.objects.filter(slug=slug).first()
    if obj is None:
        obj = model.objects.create(slug=slug, **values)
        report.created.append(f"{kind} {slug}")
        return obj
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if changed:
        for k in changed:
            setattr(obj, k, values[k])
        obj.save()
        report.updated.append(f"{kind} {slug} ({', '.join(changed)})")
    else:
        report.unchanged += 1
    return obj


@transaction.atomic
def course_load(*, root: Path = DEFAULT_CONTENT_ROOT) -> LoadReport:
    """Import sections and glossary; re-running updates and never duplicates.

    Any ContentError rolls the whole import back, so a bad file changes nothing.
    """
    report = LoadReport()
    section_files = sorted((root / "sections").glob("*.md"))
    if not section_files:
        raise ContentError(root / "sections", 0, "no section files (*.md) found")
    records = [read_section(p) for p in section_files]
    seen: dict[str, Path] = {}
    for rec in records:
        if rec.slug in seen:
            raise ContentError(rec.path, 2, f"duplicate slug {rec.slug!r}: also used by {seen[rec.slug]}")
        seen[rec.slug] = rec.path

    glossary_path = root / "glossary.yaml"
    terms = read_glossary(glossary_path) if glossary_path.exists() else []
    term_slugs = {t.slug for t in terms}
    seen_terms: dict[str, int] = {}
    for t in terms:
        if t.slug in seen_terms:
            raise ContentError(t.path, t.line, f"duplicate term slug {t.slug!r} (first at line {seen_terms[t.slug]})")
        seen_terms[t.slug] = t.line
        missing = [r for r in t.related if r not in term_slugs]
        if missing:
            raise ContentError(t.path, t.line, f"term {t.slug!r} links to missing term(s): {', '.join(missing)}")
        if t.section and t.section not in seen:
            raise ContentError(t.path, t.line, f"term {t.slug!r} names missing section {t.section!r}")

    sections = {}
    for rec in records:
        sections[rec.slug] = _upsert(
            Section,
            report,
            "section",
            rec.slug,
            {
                "title": rec.title,
                "order": rec.order,
                "objectives": rec.objectives,
                "body_markdown": rec.body,
                "body_html": render_markdown(rec.body),
            },
        )
    term_objs = {}
    for t in terms:
        term_objs[t.slug] = _upsert(
            GlossaryTerm,
            report,
            "term",
            t.slug,
            {
                "term": t.term,
                "aliases": t.aliases,
                "short": t.short,
                "definition": t.definition,
                "example": t.example,
                "section": sections.get(t.section) if t.section else None,
            },
        )
    for t in terms:
        obj = term_objs[t.slug]
        wanted = {term_objs[r].pk for r in t.related}
        if set(obj.related.values_list("pk", flat=True)) != wanted:
            obj.related.set(wanted)
            if f"term {t.slug}" not in " ".join(report.created):
                report.updated.append(f"term {t.slug} (related)")
    return report


def section_mark_read(*, user, section: Section) -> ReadingProgress:
    progress, _ = ReadingProgress.objects.get_or_create(user=user, section=section)
    return progress
