from django.contrib import admin

from courses.models import GlossaryTerm, ReadingProgress, Section
from courses.rendering import render_markdown


@admin.register(Section)
class SectionAdmin(admin.ModelAdmin):
    list_display = ("order", "title", "slug", "updated_at")
    prepopulated_fields = {"slug": ("title",)}

    def save_model(self, request, obj, form, change):
        # Admin edits go through the same sanitizing renderer as loadcourse.
        obj.body_html = render_markdown(obj.body_markdown)
        super().save_model(request, obj, form, change)


@admin.register(GlossaryTerm)
class GlossaryTermAdmin(admin.ModelAdmin):
    list_display = ("term", "slug", "section")
    search_fields = ("term", "definition")
    filter_horizontal = ("related",)


@admin.register(ReadingProgress)
class ReadingProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "section", "read_at")
    list_select_related = ("user", "section")
