from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("me/", views.me, name="me"),
    path("classes/", views.classes, name="classes"),
    path("classes/new/", views.class_create, name="class_create"),
    path("classes/join/", views.class_join, name="class_join"),
    path("classes/join/<str:code>/", views.class_join_link, name="class_join_link"),
    path("classes/<int:classroom_id>/", views.class_dashboard, name="class_dashboard"),
    path("classes/<int:classroom_id>/settings/", views.class_settings, name="class_settings"),
    path("classes/<int:classroom_id>/instructors/", views.class_instructor_add, name="class_instructor_add"),
    path("classes/<int:classroom_id>/answers/", views.class_test_answers, name="class_test_answers"),
    path("classes/<int:classroom_id>/deadlines/", views.class_deadline_set, name="class_deadline_set"),
    path(
        "classes/<int:classroom_id>/deadlines/<int:deadline_id>/delete/",
        views.class_deadline_delete,
        name="class_deadline_delete",
    ),
    path("classes/<int:classroom_id>/extensions/", views.class_extension_grant, name="class_extension_grant"),
    path("classes/<int:classroom_id>/students/<int:user_id>/", views.class_student, name="class_student"),
    path("classes/<int:classroom_id>/questions/", views.class_questions, name="class_questions"),
    path("classes/<int:classroom_id>/review/", views.class_review, name="class_review"),
    path("classes/<int:classroom_id>/jobs/", views.class_jobs, name="class_jobs"),
    path("classes/<int:classroom_id>/jobs/<int:job_id>/cancel/", views.class_job_cancel, name="class_job_cancel"),
    path("classes/<int:classroom_id>/export.csv", views.class_export, name="class_export"),
]
