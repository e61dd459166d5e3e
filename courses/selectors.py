"""Reads for the chapter pages, scoped to the user who asks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import and_, or_

from django.conf import settings
from django.db import connection
from django.db.models import Exists, F, Min, OuterRef, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from courses import srs
from courses.models import FlashcardReview, FlashcardState, GlossaryTerm, ReadingProgress, Section


def sections_with_progress(*, user) -> QuerySet[Section]:
    qs = Section.objects.only("slug", "title", "order", "objectives")
    if user.is_authenticated:
        read = ReadingProgress.objects.filter(user=user, section=OuterRef("pk"))
        return qs.annotate(is_read=Exists(read))
    return qs


def section_get(*, slug: str, user=None) -> Section:
    """One section; with a signed-in `user`, annotated `is_read` in the same query."""
    qs = Section.objects.all()
    if user is not None and user.is_authenticated:
        qs = qs.annotate(is_read=Exists(ReadingProgress.objects.filter(user=user, section=OuterRef("pk"))))
    return get_object_or_404(qs, slug=slug)


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


# ---------------------------------------------------------------- search

# Marks around matched words inside a snippet; private-use characters, so the text cannot
# contain them, and they survive HTML escaping to become <mark> afterwards.
_HIT_START, _HIT_END = "\ue000", "\ue001"
_STOP_WORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or the to was what when where which who why with"
    .split()
)  # fmt: skip
MAX_QUERY_LENGTH = 200


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: SafeString


@dataclass(frozen=True)
class SearchResults:
    query: str
    sections: list[SearchHit]
    terms: list[SearchHit]

    @property
    def count(self) -> int:
        return len(self.sections) + len(self.terms)


def _marked(text: str) -> SafeString:
    return mark_safe(escape(text).replace(_HIT_START, "<mark>").replace(_HIT_END, "</mark>"))


def search(*, query: str) -> SearchResults:
    """Sections and glossary terms matching `query`, best first.

    PostgreSQL ranks with its English full-text search (stemming, stop words, weights:
    titles and term names above body text); other databases match every word as a substring.
    """
    query = " ".join(query.split())[:MAX_QUERY_LENGTH]
    if not query:
        return SearchResults(query, [], [])
    if connection.vendor == "postgresql":
        return _search_postgres(query)
    return _search_words(query)


def _search_postgres(query: str) -> SearchResults:
    from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector

    tsquery = SearchQuery(query, config="english", search_type="websearch")

    def headline(field: str) -> SearchHeadline:
        return SearchHeadline(
            field, tsquery, config="english", start_sel=_HIT_START, stop_sel=_HIT_END, max_words=35, min_words=15
        )

    section_vector = SearchVector("title", weight="A", config="english") + SearchVector(
        "body_text", weight="B", config="english"
    )
    sections = (
        Section.objects.annotate(search=section_vector, rank=SearchRank(section_vector, tsquery))
        .filter(search=tsquery)
        .annotate(snippet=headline("body_text"))
        .only("slug", "title")
        .order_by("-rank", "order")
    )
    term_vector = (
        SearchVector("term", weight="A", config="english")
        + SearchVector(Cast("aliases", TextField()), weight="A", config="english")
        + SearchVector("short", "definition", weight="B", config="english")
        + SearchVector("example", weight="C", config="english")
    )
    terms = (
        GlossaryTerm.objects.annotate(search=term_vector, rank=SearchRank(term_vector, tsquery))
        .filter(search=tsquery)
        .annotate(snippet=headline("definition"))
        .only("slug", "term")
        .order_by("-rank", "term")
    )
    return SearchResults(
        query,
        [SearchHit(s.title, s.get_absolute_url(), _marked(s.snippet)) for s in sections],
        [SearchHit(t.term, t.get_absolute_url(), _marked(t.snippet)) for t in terms],
    )


def _query_words(query: str) -> list[str]:
    words = [w for w in re.findall(r"[\w'-]+", query.lower()) if w not in _STOP_WORDS]
    return list(dict.fromkeys(words))  # unique, in order


def _snippet(text: str, words: list[str], *, size: int = 32) -> SafeString:
    """About `size` words of `text` around the first hit, each hit marked."""
    tokens = text.split()
    hits = [i for i, token in enumerate(tokens) if any(w in token.lower() for w in words)]
    start = max((hits[0] if hits else 0) - size // 3, 0)
    window = tokens[start : start + size]
    shown = [f"{_HIT_START}{t}{_HIT_END}" if any(w in t.lower() for w in words) else t for t in window]
    text = ("… " if start else "") + " ".join(shown) + (" …" if start + size < len(tokens) else "")
    return _marked(text)


def _search_words(query: str) -> SearchResults:
    words = _query_words(query)
    if not words:
        return SearchResults(query, [], [])

    def every_word(*fields: str) -> Q:
        return reduce(and_, (reduce(or_, (Q(**{f"{f}__icontains": w}) for f in fields)) for w in words))

    def score(title: str, body: str) -> tuple[int, int]:
        title, body = title.lower(), body.lower()
        return (sum(w in title for w in words), sum(body.count(w) for w in words))

    sections = Section.objects.filter(every_word("title", "body_text")).only("slug", "title", "order", "body_text")
    sections = sorted(sections, key=lambda s: (*(-n for n in score(s.title, s.body_text)), s.order))
    terms = GlossaryTerm.objects.filter(every_word("term", "aliases", "short", "definition", "example")).only(
        "slug", "term", "aliases", "short", "definition", "example"
    )
    terms = sorted(
        terms,
        key=lambda t: (
            *(-n for n in score(" ".join([t.term, *t.aliases]), " ".join([t.short, t.definition, t.example]))),
            t.term,
        ),
    )
    return SearchResults(
        query,
        [SearchHit(s.title, s.get_absolute_url(), _snippet(s.body_text, words)) for s in sections],
        [SearchHit(t.term, t.get_absolute_url(), _snippet(t.definition, words)) for t in terms],
    )
