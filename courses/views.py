from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from courses import selectors, services, srs
from courses.forms import FlashcardRatingForm


def chapter(request):
    sections = list(selectors.sections_with_progress(user=request.user))
    read = sum(1 for s in sections if getattr(s, "is_read", False))
    resume = next((s for s in sections if not getattr(s, "is_read", False)), None)
    return render(
        request,
        "courses/chapter.html",
        {"sections": sections, "read_count": read, "resume": resume},
    )


def section(request, slug):
    section = selectors.section_get(slug=slug, user=request.user)
    prev, nxt = selectors.section_neighbours(section=section)
    return render(
        request,
        "courses/section.html",
        {"section": section, "prev": prev, "next": nxt, "is_read": getattr(section, "is_read", False)},
    )


@login_required
@require_POST
def section_mark_read(request, slug):
    section = selectors.section_get(slug=slug)
    services.section_mark_read(user=request.user, section=section)
    if "application/json" in request.headers.get("Accept", ""):
        # static/js/reading.js marks the section read when the student reaches its end,
        # and stays on the page.
        return JsonResponse({"section": section.slug, "read": True})
    _, nxt = selectors.section_neighbours(section=section)
    return redirect(nxt.get_absolute_url() if nxt else "courses:chapter")


def glossary(request):
    query = request.GET.get("q", "").strip()[:100]
    groups = selectors.glossary_by_letter(query=query)
    entries = [e for g in groups for e in g.entries]
    return render(
        request,
        "courses/glossary.html",
        {"groups": groups, "query": query, "total": len(entries), "shown": sum(e.shown for e in entries)},
    )


def term(request, slug):
    return render(request, "courses/term.html", {"term": selectors.term_get(slug=slug)})


@login_required
def flashcards(request):
    now = timezone.now()
    due = selectors.flashcards_due(user=request.user, now=now)
    card = due.first
    return render(
        request,
        "courses/flashcards.html",
        {
            "due": due,
            "card": card,
            "choices": selectors.flashcard_choices(card=card, now=now) if card else [],
            "next_in": srs.describe(due.next_due - now) if due.next_due else "",
        },
    )


@login_required
@require_POST
def flashcard_review(request):
    form = FlashcardRatingForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That rating did not come through; please choose one of the four buttons.")
        return redirect("courses:flashcards")
    term = selectors.term_for_review(slug=form.cleaned_data["term"])
    try:
        state = services.flashcard_review(user=request.user, term=term, rating=form.cleaned_data["rating"])
    except services.FlashcardNotDue as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, f"{term.term} comes back {srs.describe(state.due - state.last_review)}.")
    return redirect("courses:flashcards")


def search(request):
    results = selectors.search(query=request.GET.get("q", ""))
    return render(request, "courses/search.html", {"results": results, "search_query": results.query})
