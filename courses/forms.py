from django import forms

from courses.models import FlashcardReview


class FlashcardRatingForm(forms.Form):
    term = forms.SlugField()
    rating = forms.TypedChoiceField(choices=FlashcardReview.Rating.choices, coerce=int)
