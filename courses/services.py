"""Writes for the chapter: importing the content tree, rendering sections, marking sections read,
reviewing flashcards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from accounts.history import history_announce
from courses import selectors, srs
from courses.autolink import LinkTarget
from courses.loader import ContentError, read_glossary, read_section
from courses.models import FlashcardReview, FlashcardState, GlossaryTerm, ReadingProgress, Section
from courses.rendering import render_section

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


def _upsert(model, report: LoadReport, kind: str, slug: str, values: dict) -> tuple[models.Model, bool]:
    """Create or update one row; return it and whether the report already lists it."""
    obj = model.objects.filter(slug=slug).first()
    if obj is None:
        obj = model.objects.create(slug=slug, **values)
        report.created.append(f"{kind} {slug}")
        return obj, True
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if changed:
        for k in changed:
            setattr(obj, k, values[k])
        obj.save()
        report.updated.append(f"{kind} {slug} ({', '.join(changed)})")
        return obj, True
    report.unchanged += 1
    return obj, False


def _link_targets() -> tuple[list[LinkTarget], dict[str, int]]:
    terms = GlossaryTerm.objects.only("pk", "slug", "short", "aliases")
    targets = [
        LinkTarget(slug=t.slug, url=t.get_absolute_url(), short=t.short, aliases=tuple(t.aliases)) for t in terms
    ]
    return targets, {t.slug: t.pk for t in terms}


def section_render(*, section: Section, targets: tuple[list[LinkTarget], dict[str, int]] | None = None) -> bool:
    """Render a saved section's Markdown with the current glossary linked; save only what changed.

    Returns whether the stored HTML, text or term mentions changed.
    """
    link_targets, pk_by_slug = targets if targets is not None else _link_targets()
    rendered = render_section(section.body_markdown, link_targets)
    changed = False
    if (section.body_html, section.body_text) != (rendered.html, rendered.text):
        section.body_html, section.body_text = rendered.html, rendered.text
        section.save(update_fields=["body_html", "body_text", "updated_at"])
        changed = True
    wanted = {pk_by_slug[slug] for slug in rendered.mentions}
    if set(section.mentions.values_list("pk", flat=True)) != wanted:
        section.mentions.set(wanted)
        changed = True
    return changed


def sections_relink() -> list[str]:
    """Re-render every section after the glossary changed; return the slugs whose links changed."""
    targets = _link_targets()
    return [s.slug for s in Section.objects.all() if section_render(section=s, targets=targets)]


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
    alias_owner: dict[str, str] = {}
    for t in terms:
        if t.slug in seen_terms:
            raise ContentError(t.path, t.line, f"duplicate term slug {t.slug!r} (first at line {seen_terms[t.slug]})")
        seen_terms[t.slug] = t.line
        missing = [r for r in t.related if r not in term_slugs]
        if missing:
            raise ContentError(t.path, t.line, f"term {t.slug!r} links to missing term(s): {', '.join(missing)}")
        if t.section and t.section not in seen:
            raise ContentError(t.path, t.line, f"term {t.slug!r} names missing section {t.section!r}")
        for alias in t.aliases:
            # Auto-linking needs to know which one term a phrase stands for.
            if alias in alias_owner and alias_owner[alias] != t.slug:
                raise ContentError(
                    t.path, t.line, f"alias {alias!r} of term {t.slug!r} is also an alias of {alias_owner[alias]!r}"
                )
            alias_owner[alias] = t.slug

    sections, reported = {}, set()
    for rec in records:
        sections[rec.slug], listed = _upsert(
            Section,
            report,
            "section",
            rec.slug,
            {
                "title": rec.title,
                "order": rec.order,
                "objectives": rec.objectives,
                "body_markdown": rec.body,
            },
        )
        if listed:
            reported.add(rec.slug)
    term_objs = {}
    for t in terms:
        term_objs[t.slug], _ = _upsert(
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

    # Render last, once every term exists, so each section links the glossary as it now is.
    targets = _link_targets()
    for slug, section in sections.items():
        if section_render(section=section, targets=targets) and slug not in reported:
            report.unchanged -= 1
            report.updated.append(f"section {slug} (glossary links)")
    return report


def section_mark_read(*, user, section: Section) -> ReadingProgress:
    with transaction.atomic():
        progress, created = ReadingProgress.objects.get_or_create(user=user, section=section)
        if created:
            history_announce(user_ids=[user.pk])
    return progress


class FlashcardNotDue(Exception):
    """The card cannot be reviewed now: it is not due yet, or today's new cards are used up."""


@transaction.atomic
def flashcard_review(*, user, term: GlossaryTerm, rating: int, now: datetime | None = None) -> FlashcardState:
    """Record one rating of `term` by `user` and let FSRS set when the card is next due."""
    now = now or timezone.now()
    rating = FlashcardReview.Rating(rating)  # ValueError for anything but 1 to 4
    state = FlashcardState.objects.select_for_update().filter(user=user, term=term).first()
    if state is None:
        if selectors.flashcards_new_left_today(user=user, now=now) < 1:
            raise FlashcardNotDue("You have met today's new cards; more come tomorrow.")
        card, due_before = srs.card_new(card_id=term.pk, now=now), None
        state = FlashcardState(user=user, term=term, introduced_at=now)
    else:
        # A second submission of the same rating (a double click, the back button, another
        # tab) finds the card already rescheduled, and changes nothing.
        if state.due > now:
            raise FlashcardNotDue(f"{term.term} is not due yet: it comes back {srs.describe(state.due - now)}.")
        card, due_before = srs.card_load(state.card), state.due
    card = srs.card_review(card, rating, now)
    state.card, state.due, state.last_review = card.to_dict(), card.due, now
    try:
        with transaction.atomic():
            state.save()
    except IntegrityError:  # another request introduced the same card a moment ago
        raise FlashcardNotDue(f"{term.term} was just reviewed.") from None
    FlashcardReview.objects.create(
        user=user, term=term, rating=rating, reviewed_at=now, due_before=due_before, due_after=card.due
    )
    history_announce(user_ids=[user.pk])
    return state
