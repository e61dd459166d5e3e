"""Glossary flashcards on FSRS: the scheduler sets due dates, new cards are rationed, students are apart."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from fsrs import Card, Rating, Scheduler, State

from courses.models import FlashcardReview, FlashcardState, GlossaryTerm
from courses.selectors import flashcards_due
from courses.services import FlashcardNotDue, course_load, flashcard_review

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def course():
    course_load()


@pytest.fixture
def epoch(course):
    return GlossaryTerm.objects.get(slug="epoch")


def scheduled_directly(rating: Rating, *, seed: int, card: Card | None = None, at: datetime = NOW) -> Card:
    random.seed(seed)  # fsrs fuzzes longer intervals with the module-level random
    reviewed, _ = Scheduler().review_card(card or Card(due=at), rating, review_datetime=at)
    return reviewed


@pytest.mark.parametrize("rating", list(Rating))
def test_a_first_rating_sets_the_due_date_the_scheduler_gives(student, epoch, rating):
    random.seed(11)
    state = flashcard_review(user=student, term=epoch, rating=rating, now=NOW)
    expected = scheduled_directly(rating, seed=11)
    assert state.due == expected.due
    assert state.card["state"] == expected.state and state.card["stability"] == expected.stability


def test_again_brings_a_card_back_soon_and_easy_much_later(student, student2, epoch):
    again = flashcard_review(user=student, term=epoch, rating=Rating.Again, now=NOW)
    easy = flashcard_review(user=student2, term=epoch, rating=Rating.Easy, now=NOW)
    assert again.due == NOW + timedelta(minutes=1)  # FSRS's first learning step
    assert easy.due - NOW >= timedelta(days=3)
    assert easy.card["state"] == State.Review


def test_later_reviews_continue_from_the_stored_card(student, epoch):
    first = flashcard_review(user=student, term=epoch, rating=Rating.Good, now=NOW)
    later = first.due + timedelta(hours=1)
    random.seed(5)
    second = flashcard_review(user=student, term=epoch, rating=Rating.Good, now=later)
    expected = scheduled_directly(Rating.Good, seed=5, card=scheduled_directly(Rating.Good, seed=0), at=later)
    assert second.due == expected.due and second.last_review == later
    assert list(FlashcardReview.objects.filter(user=student).values_list("rating", flat=True)) == [3, 3]
    assert FlashcardReview.objects.filter(user=student).first().due_before == first.due


def test_a_card_cannot_be_rated_again_before_it_is_due(student, epoch):
    state = flashcard_review(user=student, term=epoch, rating=Rating.Easy, now=NOW)
    with pytest.raises(FlashcardNotDue, match="not due yet"):
        flashcard_review(user=student, term=epoch, rating=Rating.Again, now=NOW + timedelta(seconds=5))
    state.refresh_from_db()
    assert state.due > NOW + timedelta(days=1)
    assert FlashcardReview.objects.filter(user=student).count() == 1


def test_a_rating_outside_one_to_four_is_refused(student, epoch):
    with pytest.raises(ValueError):
        flashcard_review(user=student, term=epoch, rating=5, now=NOW)
    assert not FlashcardState.objects.exists()


def test_one_students_reviews_never_affect_anothers(settings, student, student2, epoch):
    settings.JOURNEY_NEW_CARDS_PER_DAY = 1000  # every term is on offer, so a leak would show
    later = NOW + timedelta(minutes=5)
    before = flashcards_due(user=student2, now=later)
    flashcard_review(user=student, term=epoch, rating=Rating.Again, now=NOW)
    assert [c.term for c in flashcards_due(user=student, now=later).cards if c.state] == [epoch]
    after = flashcards_due(user=student2, now=later)
    assert after.reviews == 0 and epoch in [c.term for c in after.cards]
    assert [c.term.slug for c in after.cards] == [c.term.slug for c in before.cards]
    assert after.new_left_today == before.new_left_today
    # student2's own first review of the same term starts from a new card, and leaves student's alone.
    mine = flashcard_review(user=student2, term=epoch, rating=Rating.Easy, now=NOW)
    assert mine.due > NOW + timedelta(days=1)
    assert FlashcardState.objects.get(user=student, term=epoch).due == NOW + timedelta(minutes=1)
    assert FlashcardReview.objects.filter(user=student).count() == 1


def test_new_cards_are_rationed_per_day(settings, student, course):
    settings.JOURNEY_NEW_CARDS_PER_DAY = 3
    due = flashcards_due(user=student, now=NOW)
    assert due.new == 3 and due.reviews == 0 and due.new_left_today == 3
    for card in due.cards:
        flashcard_review(user=student, term=card.term, rating=Rating.Easy, now=NOW)
    spare = GlossaryTerm.objects.exclude(flashcards__user=student).first()
    with pytest.raises(FlashcardNotDue, match="today's new cards"):
        flashcard_review(user=student, term=spare, rating=Rating.Good, now=NOW)
    done = flashcards_due(user=student, now=NOW + timedelta(hours=1))
    assert done.count == 0 and done.new_left_today == 0 and done.next_due is not None
    tomorrow = flashcards_due(user=student, now=NOW + timedelta(days=1))
    assert tomorrow.new == 3 and not {c.term.pk for c in tomorrow.cards} & {c.term.pk for c in due.cards}


def test_due_reviews_come_before_new_cards_oldest_first(student, course):
    terms = list(GlossaryTerm.objects.order_by("slug")[:2])
    for term in terms:
        flashcard_review(user=student, term=term, rating=Rating.Again, now=NOW)
    flashcard_review(user=student, term=terms[1], rating=Rating.Again, now=NOW + timedelta(minutes=2))
    due = flashcards_due(user=student, now=NOW + timedelta(minutes=5))
    assert [c.term for c in due.cards[:2]] == [terms[0], terms[1]]
    assert due.reviews == 2 and all(c.state is None for c in due.cards[2:])


def test_new_cards_follow_the_order_the_chapter_teaches_them(student, course):
    due = flashcards_due(user=student, now=NOW)
    orders = [c.term.section.order for c in due.cards]
    assert orders == sorted(orders) and orders[0] == 1


# ---------------------------------------------------------------- pages


def test_the_review_page_needs_a_login(client, course):
    response = client.get(reverse("courses:flashcards"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_review_page_shows_a_card_with_a_hidden_answer_and_four_ratings(client, settings, student, course):
    settings.JOURNEY_NEW_CARDS_PER_DAY = 10
    client.force_login(student)
    page = client.get(reverse("courses:flashcards")).content.decode()
    first = flashcards_due(user=student, now=datetime.now(UTC)).first.term
    assert f'<h2 id="card-term" class="card-term">{first.term}</h2>' in page
    assert '<details class="reveal" id="reveal">' in page and "Show the answer" in page
    assert page.count('type="submit" name="rating"') == 4
    assert "csrfmiddlewaretoken" in page
    assert "<strong>10</strong> cards due now: 0 to review, 10 new." in page


def test_rating_a_card_schedules_it_and_shows_the_next(client, student, course):
    client.force_login(student)
    first = flashcards_due(user=student, now=datetime.now(UTC)).first.term
    response = client.post(reverse("courses:flashcard_review"), {"term": first.slug, "rating": "1"}, follow=True)
    state = FlashcardState.objects.get(user=student, term=first)
    assert state.due - state.last_review == timedelta(minutes=1)
    page = response.content.decode()
    assert f"{first.term} comes back in 1 minute." in page
    assert f'<h2 id="card-term" class="card-term">{first.term}</h2>' not in page


def test_rating_needs_the_csrf_token(student, epoch):
    client = Client(enforce_csrf_checks=True)
    client.force_login(student)
    response = client.post(reverse("courses:flashcard_review"), {"term": "epoch", "rating": "3"})
    assert response.status_code == 403
    assert not FlashcardState.objects.exists()


def test_a_bad_rating_or_unknown_term_changes_nothing(client, student, epoch):
    client.force_login(student)
    response = client.post(reverse("courses:flashcard_review"), {"term": "epoch", "rating": "9"}, follow=True)
    assert "please choose one of the four buttons" in response.content.decode()
    response = client.post(reverse("courses:flashcard_review"), {"term": "no-such-term", "rating": "3"})
    assert response.status_code == 404
    assert not FlashcardState.objects.exists()


def test_the_page_says_when_the_next_card_is_due_once_all_are_done(client, settings, student, course):
    settings.JOURNEY_NEW_CARDS_PER_DAY = 1
    client.force_login(student)
    first = flashcards_due(user=student, now=datetime.now(UTC)).first.term
    client.post(reverse("courses:flashcard_review"), {"term": first.slug, "rating": "4"})
    page = client.get(reverse("courses:flashcards")).content.decode()
    assert "Nothing to study right now" in page and "Your next card comes back in" in page


def test_flashcards_page_query_count_is_bounded(client, student, course, django_assert_num_queries):
    client.force_login(student)
    flashcard_review(user=student, term=GlossaryTerm.objects.get(slug="epoch"), rating=Rating.Again, now=NOW)
    # django_session, auth_user, due cards with their terms, cards introduced today, new terms
    with django_assert_num_queries(5):
        response = client.get(reverse("courses:flashcards"))
    assert "1 to review" in response.content.decode()


@pytest.mark.parametrize(
    "interval, words",
    [
        (timedelta(seconds=20), "in 1 minute"),
        (timedelta(minutes=10), "in 10 minutes"),
        (timedelta(hours=5), "in 5 hours"),
        (timedelta(days=8, hours=9), "in 8 days"),
        (timedelta(days=62), "in 2 months"),
    ],
)
def test_intervals_read_as_short_rounded_phrases(interval, words):
    from courses.srs import describe

    assert describe(interval) == words
