"""Spaced repetition for the glossary flashcards: the FSRS scheduler, and its cards stored as JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fsrs import Card, Rating, Scheduler

# FSRS's published defaults: 90% desired retention, learning steps of 1 and 10 minutes.
# Fuzzing spreads cards learnt together over nearby days, so reviews do not pile up.
SCHEDULER = Scheduler()
# Previews the intervals on the rating buttons; unfuzzed, so it shows the scheduler's centre.
_PREVIEW = Scheduler(enable_fuzzing=False)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)  # fsrs insists on UTC


def card_new(*, card_id: int, now: datetime) -> Card:
    return Card(card_id=card_id, due=_utc(now))


def card_load(data: dict) -> Card:
    return Card.from_dict(data)


def card_review(card: Card, rating: int, now: datetime) -> Card:
    reviewed, _log = SCHEDULER.review_card(card, Rating(rating), review_datetime=_utc(now))
    return reviewed


def intervals(card: Card, now: datetime) -> dict[int, timedelta]:
    """How long until the card comes back after each rating, before fuzzing."""
    now = _utc(now)
    return {int(r): _PREVIEW.review_card(card, r, review_datetime=now)[0].due - now for r in Rating}


def describe(interval: timedelta) -> str:
    """A short, rounded 'in ...' for an interval: in 1 minute, in 10 minutes, in 3 days, in 2 months."""
    seconds = max(interval.total_seconds(), 0)
    units = (("year", 365 * 86400), ("month", 30 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))
    unit, size = next(((u, n) for u, n in units if seconds >= n), units[-1])
    count = max(round(seconds / size), 1)
    return f"in {count} {unit}{'' if count == 1 else 's'}"
