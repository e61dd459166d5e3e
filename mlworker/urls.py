from django.urls import path

from mlworker import views

app_name = "mlworker"
urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("new/", views.job_new, name="new"),
    path("compare/", views.jobs_compare, name="compare"),
    path("models/", views.models, name="models"),
    path("data/", views.datasets, name="datasets"),
    path("data/<int:dataset_id>/samples/<int:index>.png", views.dataset_sample, name="dataset_sample"),
    path("data/<int:dataset_id>/delete/", views.dataset_delete, name="dataset_delete"),
    path("data/<int:pk>/share/", views.sharing, {"kind": "dataset", "share": True}, name="dataset_share"),
    path("data/<int:pk>/unshare/", views.sharing, {"kind": "dataset", "share": False}, name="dataset_unshare"),
    path("models/<int:job_id>/rename/", views.model_rename, name="model_rename"),
    path("models/<int:job_id>/delete/", views.model_delete, name="model_delete"),
    path("models/<int:pk>/share/", views.sharing, {"kind": "model", "share": True}, name="model_share"),
    path("models/<int:pk>/unshare/", views.sharing, {"kind": "model", "share": False}, name="model_unshare"),
    path("<int:job_id>/predict/", views.predict, name="predict"),
    path("<int:job_id>/batches/<uuid:batch>/", views.prediction_batch, name="batch"),
    path("predictions/<int:prediction_id>/", views.prediction_detail, name="prediction"),
    path("predictions/<int:prediction_id>/status/", views.prediction_status, name="prediction_status"),
    path("predictions/<int:prediction_id>/<str:size>.png", views.prediction_image, name="prediction_image"),
    path("<int:job_id>/", views.job_detail, name="job"),
    path("<int:job_id>/status/", views.job_status, name="status"),
    path("<int:job_id>/cancel/", views.job_cancel, name="cancel"),
    path("<int:job_id>/model/", views.job_file, {"kind": "model"}, name="model"),
    path("<int:job_id>/top-losses/<int:index>/", views.job_file, {"kind": "top-loss"}, name="top_loss"),
]
