"""Reads for the chapter pages, scoped to the user who asks."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from courses.models import GlossaryTerm, ReadingProgress, Section


def sections_with_progress(*, user) -> QuerySet[Section]:
    qs = Section.objects.only("slug", "title", "order", "objectives")
    if user.is_authenticated:
        read = ReadingProgress.objects.filter(user=user, section=OuterRef("pk"))
        return qs.annotate(is_read=Exists(read))
    return qs


def section_get(*, slug: str) -> Section:
    return get_object_or_404(Section, slug=slug)


def section_neighbours(*, section: Section) -> tuple[Section | None, Section | None]:
    prev = Section.objects.filter(order__lt=section.order).order_by("-order").only("slug", "title").first()
    nxt = Section.objects.filter(order__gt=section.order).order_by("order").only("slug", "title").first()
    return prev, nxt


def terms_all() -> QuerySet[GlossaryTerm]:
    return GlossaryTerm.objects.select_related("section").only(
        "slug", "term", "aliases", "short", "section__slug", "section__title"
    )


def term_search_text(term: GlossaryTerm) -> str:
    """What the glossary filter matches against; static/js/glossary-filter.js reads the same text."""
    return " ".join([term.term, *term.aliases, term.short]).lower()


def term_matches(term: GlossaryTerm, query: str) -> bool:
    text = term_search_text(term)
    return all(word in text for word in query.lower().split())


@dataclass
class GlossaryEntry:
    term: GlossaryTerm
    search_text: str
    shown: bool


@dataclass
class LetterGroup:
    letter: str
    entries: list[GlossaryEntry]

    @property
    def shown(self) -> bool:
        return any(e.shown for e in self.entries)


def glossary_by_letter(*, query: str = "") -> list[LetterGroup]:
    """Every term, A to Z, grouped by first letter; those not matching `query` are marked hidden.

    Hidden rather than left out, so that clearing the filter in the browser brings them back.
    """
    groups: dict[str, LetterGroup] = {}
    for term in sorted(terms_all(), key=lambda t: t.term.casefold()):
        first = term.term[:1].upper()
        letter = first if "A" <= first <= "Z" else "#"
        entry = GlossaryEntry(term, term_search_text(term), term_matches(term, query))
        groups.setdefault(letter, LetterGroup(letter, [])).entries.append(entry)
    return sorted(groups.values(), key=lambda g: (g.letter == "#", g.letter))


def term_get(*, slug: str) -> GlossaryTerm:
    """One term with its section, its related terms and the sections that mention it."""
    return get_object_or_404(
        GlossaryTerm.objects.select_related("section").prefetch_related(
            Prefetch("related", queryset=GlossaryTerm.objects.only("slug", "term", "short").order_by("term")),
            Prefetch("mentioned_in", queryset=Section.objects.only("slug", "title", "order").order_by("order")),
        ),
        slug=slug,
    )
