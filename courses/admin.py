from django.contrib import admin

from accounts.history import AnnouncesHistory
from courses import services
from courses.models import FlashcardReview, FlashcardState, GlossaryTerm, ReadingProgress, Section


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ("order", "title", "slug", "updated_at")
    prepopulated_fields = {"slug": ("title",)}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Admin edits go through the same sanitizing, term-linking renderer as loadcourse.
        services.section_render(section=obj)


@admin.register(GlossaryTerm)
class GlossaryTermAdmin(admin.ModelAdmin):
    list_display = ("term", "slug", "section")
    search_fields = ("term", "definition")
    filter_horizontal = ("related",)

    # A term's aliases and hover text live inside every section's stored HTML.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        services.sections_relink()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        services.sections_relink()

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        services.sections_relink()


@admin.register(ReadingProgress)
class ReadingProgressAdmin(AnnouncesHistory, admin.ModelAdmin):
    list_display = ("user", "section", "read_at")
    list_select_related = ("user", "section")


@admin.register(FlashcardState)
class FlashcardStateAdmin(admin.ModelAdmin):
    list_display = ("user", "term", "due", "last_review", "introduced_at")
    list_select_related = ("user", "term")
    search_fields = ("user__username", "term__term")
    readonly_fields = ("user", "term", "card", "due", "last_review", "introduced_at")


@admin.register(FlashcardReview)
class FlashcardReviewAdmin(AnnouncesHistory, admin.ModelAdmin):
    list_display = ("user", "term", "rating", "reviewed_at", "due_after")
    list_filter = ("rating",)
    list_select_related = ("user", "term")
    search_fields = ("user__username", "term__term")
    readonly_fields = ("user", "term", "rating", "reviewed_at", "due_before", "due_after")
