from django.urls import path

from quizzes import views

app_name = "quizzes"
urlpatterns = [
    path("", views.index, name="index"),
    path("review/", views.review_queue, name="review_queue"),
    path("review/bulk/", views.review_bulk, name="review_bulk"),
    path("review/answers/<int:answer_id>/", views.review_answer, name="review_answer"),
    path("attempts/<int:attempt_id>/", views.attempt, name="attempt"),
    path("attempts/<int:attempt_id>/save/", views.attempt_save, name="save"),
    path("attempts/<int:attempt_id>/answers/<int:position>/", views.answer_autosave, name="autosave"),
    path("attempts/<int:attempt_id>/submit/", views.attempt_submit, name="submit"),
    path("attempts/<int:attempt_id>/review/", views.review, name="review"),
    path("attempts/<int:attempt_id>/status/", views.attempt_status, name="status"),
    path("answers/<int:answer_id>/review-request/", views.review_request, name="review_request"),
    # Last: a section's slug (or "chapter") names its quiz.
    path("<slug:slug>/", views.start, name="section"),
]
