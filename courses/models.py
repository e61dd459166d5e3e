from django.conf import settings
from django.db import models


class Section(models.Model):
    """One section of the chapter, imported from content/ by `loadcourse`."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField()
    objectives = models.JSONField(default=list, blank=True)
    body_markdown = models.TextField()
    body_html = models.TextField(editable=False, default="")
    # Plain text of the body, for search and result snippets; rendered with body_html.
    body_text = models.TextField(editable=False, default="")
    # The glossary terms the body links to, set with body_html: "appears in" on a term's page.
    mentions = models.ManyToManyField("GlossaryTerm", blank=True, editable=False, related_name="mentioned_in")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("courses:section", args=[self.slug])


class GlossaryTerm(models.Model):
    slug = models.SlugField(unique=True)
    term = models.CharField(max_length=120)
    aliases = models.JSONField(default=list, blank=True, help_text="Surface forms that link to this term.")
    short = models.CharField(max_length=240, help_text="One sentence, shown on hover.")
    definition = models.TextField()
    example = models.TextField(blank=True)
    related = models.ManyToManyField("self", blank=True, symmetrical=False)
    section = models.ForeignKey(Section, null=True, blank=True, on_delete=models.SET_NULL, related_name="terms")

    class Meta:
        ordering = ["term"]

    def __str__(self):
        return self.term

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("courses:term", args=[self.slug])


class ReadingProgress(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reading")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="reading")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "section"], name="one_read_mark_per_section")]


class FlashcardState(models.Model):
    """Where one student stands with one term's flashcard: the FSRS card and when it is next due."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flashcards")
    term = models.ForeignKey(GlossaryTerm, on_delete=models.CASCADE, related_name="flashcards")
    card = models.JSONField(help_text="fsrs.Card.to_dict() after the latest review.")
    due = models.DateTimeField()
    last_review = models.DateTimeField()
    introduced_at = models.DateTimeField(help_text="The first review; counts against that day's new cards.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "term"], name="one_flashcard_per_user_and_term")]
        indexes = [
            models.Index(fields=["user", "due"], name="flashcard_due_idx"),
            models.Index(fields=["user", "introduced_at"], name="flashcard_introduced_idx"),
        ]

    def __str__(self):
        return f"{self.user} · {self.term} · due {self.due:%Y-%m-%d %H:%M}"


class FlashcardReview(models.Model):
    """One rating a student gave; the history the scheduler's state came from."""

    class Rating(models.IntegerChoices):
        # The values are fsrs.Rating's.
        AGAIN = 1, "Again"
        HARD = 2, "Hard"
        GOOD = 3, "Good"
        EASY = 4, "Easy"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flashcard_reviews")
    term = models.ForeignKey(GlossaryTerm, on_delete=models.CASCADE, related_name="flashcard_reviews")
    rating = models.PositiveSmallIntegerField(choices=Rating.choices)
    reviewed_at = models.DateTimeField()
    due_before = models.DateTimeField(null=True, blank=True, help_text="Empty for a card seen for the first time.")
    due_after = models.DateTimeField()

    class Meta:
        ordering = ["-reviewed_at"]
        indexes = [models.Index(fields=["user", "reviewed_at"], name="flashcard_review_user_idx")]

    def __str__(self):
        return f"{self.user} · {self.term} · {self.get_rating_display()}"
