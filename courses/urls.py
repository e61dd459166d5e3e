from django.urls import path

from courses import views

app_name = "courses"
urlpatterns = [
    path("", views.chapter, name="chapter"),
    path("glossary/", views.glossary, name="glossary"),
    path("glossary/<slug:slug>/", views.term, name="term"),
    path("flashcards/", views.flashcards, name="flashcards"),
    path("flashcards/review/", views.flashcard_review, name="flashcard_review"),
    path("search/", views.search, name="search"),
    path("<slug:slug>/", views.section, name="section"),
    path("<slug:slug>/read/", views.section_mark_read, name="mark_read"),
]
