from django.urls import path

from mlworker import views

app_name = "mlworker"
urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("new/", views.job_new, name="new"),
    path("compare/", views.jobs_compare, name="compare"),
    path("<int:job_id>/", views.job_detail, name="job"),
    path("<int:job_id>/status/", views.job_status, name="status"),
    path("<int:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("<int:job_id>/model/", views.job_file, {"kind": "model"}, name="model"),
    path("<int:job_id>/top-losses/<int:index>/", views.job_file, {"kind": "top-loss"}, name="top_loss"),
]
