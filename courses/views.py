from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from courses import selectors, services


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
    section = selectors.section_get(slug=slug)
    prev, nxt = selectors.section_neighbours(section=section)
    is_read = request.user.is_authenticated and section.reading.filter(user=request.user).exists()
    return render(
        request,
        "courses/section.html",
        {"section": section, "prev": prev, "next": nxt, "is_read": is_read},
    )


@login_required
@require_POST
def section_mark_read(request, slug):
    section = selectors.section_get(slug=slug)
    services.section_mark_read(user=request.user, section=section)
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
