from django.contrib import admin

from accounts.forms import AdminLoginForm
from accounts.models import ClassMembership, Classroom, Extension, QuizDeadline

# The admin's log-in pauses with the site's (accounts.forms.LoginLimitMixin).
admin.site.login_form = AdminLoginForm


class MembershipInline(admin.TabularInline):
    model = ClassMembership
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "created_by", "created_at"]
    inlines = [MembershipInline]


@admin.register(QuizDeadline)
class QuizDeadlineAdmin(admin.ModelAdmin):
    list_display = ["classroom", "quiz", "due_at"]


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ["deadline", "student", "due_at"]
