from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    email = forms.EmailField(help_text="For resetting your password if you forget it.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()


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
