"""Reads for the chapter pages, scoped to the user who asks."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet
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
        "slug", "term", "short", "section__slug", "section__title"
    )


def term_get(*, slug: str) -> GlossaryTerm:
    return get_object_or_404(GlossaryTerm.objects.select_related("section").prefetch_related("related"), slug=slug)
