"""Reads for the chapter pages, scoped to the user who asks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, F, Min, OuterRef, Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from courses import srs
from courses.models import FlashcardReview, FlashcardState, GlossaryTerm, ReadingProgress, Section


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


def term_for_review(*, slug: str) -> GlossaryTerm:
    return get_object_or_404(GlossaryTerm.objects.only("pk", "slug", "term"), slug=slug)


# ---------------------------------------------------------------- flashcards


@dataclass(frozen=True)
class DueCard:
    term: GlossaryTerm
    state: FlashcardState | None  # None for a card the student has never seen


@dataclass(frozen=True)
class DueCards:
    cards: list[DueCard]  # due reviews first, the longest overdue first, then new cards in teaching order
    reviews: int
    new: int
    new_left_today: int
    next_due: datetime | None  # when the next card comes back, if none is due now

    @property
    def count(self) -> int:
        return len(self.cards)

    @property
    def first(self) -> DueCard | None:
        return self.cards[0] if self.cards else None


def start_of_day(now: datetime) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


def flashcards_new_left_today(*, user, now: datetime) -> int:
    introduced = FlashcardState.objects.filter(user=user, introduced_at__gte=start_of_day(now)).count()
    return max(settings.JOURNEY_NEW_CARDS_PER_DAY - introduced, 0)


def flashcards_due(*, user, now: datetime) -> DueCards:
    """The cards `user` should study at `now`: due reviews, then new terms up to today's allowance."""
    term_fields = ("term__slug", "term__term", "term__definition", "term__example", "term__section__title")
    reviews = list(
        FlashcardState.objects.filter(user=user, due__lte=now)
        .select_related("term__section")
        .only("pk", "card", "due", "last_review", "term_id", "term__section_id", *term_fields)
        .order_by("due", "pk")
    )
    new_left = flashcards_new_left_today(user=user, now=now)
    new_terms = []
    if new_left:
        new_terms = list(
            GlossaryTerm.objects.exclude(flashcards__user=user)
            .select_related("section")
            .only("pk", "slug", "term", "definition", "example", "section__title", "section__order")
            .order_by(F("section__order").asc(nulls_last=True), "term")[:new_left]
        )
    cards = [DueCard(s.term, s) for s in reviews] + [DueCard(t, None) for t in new_terms]
    next_due = None
    if not cards:
        next_due = FlashcardState.objects.filter(user=user).aggregate(next=Min("due"))["next"]
    return DueCards(cards, len(reviews), len(new_terms), new_left, next_due)


@dataclass(frozen=True)
class RatingChoice:
    value: int
    label: str
    when: str


def flashcard_choices(*, card: DueCard, now: datetime) -> list[RatingChoice]:
    """The four ratings, each with when the card would come back."""
    fsrs_card = srs.card_load(card.state.card) if card.state else srs.card_new(card_id=card.term.pk, now=now)
    intervals = srs.intervals(fsrs_card, now)
    return [RatingChoice(r.value, r.label, srs.describe(intervals[r.value])) for r in FlashcardReview.Rating]
