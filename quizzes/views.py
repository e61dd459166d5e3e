from django.shortcuts import render

from courses import selectors


def index(request):
    return render(request, "quizzes/index.html", {"sections": selectors.sections_with_progress(user=request.user)})


def section(request, slug):
    return render(request, "quizzes/section.html", {"section": selectors.section_get(slug=slug)})
