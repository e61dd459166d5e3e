from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError

from accounts import services
from accounts.backends import client_ip
from accounts.models import AnswersShown

MSG_LOCKED = (
    "Too many wrong passwords. For your account's safety, log-in is paused: "
    "please wait {minutes} minutes and try again, or reset your password."
)


class LoginLimitMixin:
    """Says a paused log-in is paused, instead of checking the password (accounts.backends)."""

    def clean(self):
        username = self.data.get("username", "")
        if services.login_is_locked(username=username, ip=client_ip(self.request)):
            raise ValidationError(MSG_LOCKED.format(minutes=settings.JOURNEY_LOGIN_WINDOW_MINUTES), code="locked")
        return super().clean()


class LoginForm(LoginLimitMixin, AuthenticationForm):
    pass


class AdminLoginForm(LoginLimitMixin, AdminAuthenticationForm):
    pass


class SignupForm(UserCreationForm):
    email = forms.EmailField(label="Email", help_text="For resetting your password if you forget it.")
    error_messages = {"password_mismatch": "The two passwords are not the same: type the same one twice."}

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What settings.AUTH_PASSWORD_VALIDATORS ask, said before the first try rather than after it.
        self.fields["username"].help_text = "Letters, digits and @ . + - _ only; your class sees it."
        self.fields["password1"].label = "Password"
        self.fields[
            "password1"
        ].help_text = (
            "At least 8 characters, not all digits, not a common password and not too like your username or email."
        )
        self.fields["password2"].label = "The same password again"
        self.fields["password2"].help_text = ""


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False, label="First name")
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    email = forms.EmailField(label="Email")


class ClassroomForm(forms.Form):
    name = forms.CharField(max_length=100, label="Class name")


class JoinForm(forms.Form):
    code = forms.CharField(max_length=12, label="Join code")


class CoInstructorForm(forms.Form):
    username = forms.CharField(max_length=150, label="Instructor's username")


UTC_HELP = "Date and time in UTC (every time on Journey is)."


class DeadlineForm(forms.Form):
    quiz = forms.ChoiceField(label="Quiz")
    due_at = forms.DateTimeField(
        label="Due", help_text=UTC_HELP, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, quizzes: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["quiz"].choices = list(quizzes.items())


class ExtensionForm(forms.Form):
    deadline = forms.TypedChoiceField(coerce=int, label="Deadline")
    student = forms.TypedChoiceField(coerce=int, label="Student")
    due_at = forms.DateTimeField(
        label="New due date", help_text=UTC_HELP, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, deadlines, students, titles, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadlines = {d.pk: d for d in deadlines}
        self.fields["deadline"].choices = [(d.pk, titles.get(d.quiz, d.quiz)) for d in deadlines]
        self.fields["student"].choices = [(s.pk, s.username) for s in students]

    def clean(self):
        data = super().clean()
        deadline, due_at = self.deadlines.get(data.get("deadline")), data.get("due_at")
        if deadline is not None and due_at is not None and due_at <= deadline.due_at:
            self.add_error(
                "due_at",
                f"An extension gives more time: pick a moment after the class's deadline "
                f"({deadline.due_at:%b} {deadline.due_at.day} {deadline.due_at:%Y, %H:%M} UTC).",
            )
        return data


class TestAnswersForm(forms.Form):
    test_answers = forms.ChoiceField(
        choices=AnswersShown.choices,
        label="Show students the right answers of a test",
        help_text="The right answers, explanations and key points, and whether each answer was right. "
        "A student in several classes sees them only when every one of those classes allows it; "
        "instructors always see them.",
    )
