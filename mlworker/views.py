import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import classrooms_of
from mlworker import selectors, services
from mlworker.forms import (
    DatasetUploadForm,
    JobForm,
    PredictForm,
    RenameForm,
    ShareForm,
    dataset_cards,
)
from mlworker.jobsettings import SETTING_NAMES, chapter_code
from mlworker.models import JobState, Prediction
from mlworker.presets import PRESETS, PRESETS_BY_KEY
from mlworker.splits import SMALL_VALIDATION
from mlworker.uploads import capped_uploads, dataset_limit, prediction_limit
from mlworker.workers import workers_panel

MSG_PREDICT_QUEUE_DOWN = (
    "The prediction service is unavailable right now. Your image is saved and will be sent to the "
    "model as soon as the service is back; this page updates by itself."
)


@login_required
def jobs(request):
    # django_session, auth_user, jobs page, GPU workers alive, the jobs they run, jobs waiting in the queue
    jobs = list(selectors.jobs_list(user=request.user))
    panel = workers_panel(jobs=jobs, describe=lambda job: f"your experiment #{job.pk}")
    return render(request, "mlworker/jobs.html", {"jobs": jobs, "workers": panel})


@login_required
def job_new(request):
    if request.method == "POST":
        form = JobForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                job = services.job_submit(user=request.user, job_settings=form.job_settings())
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                job.refresh_from_db(fields=["dispatched_at"])
                if job.dispatched_at is None:
                    messages.warning(
                        request,
                        "The job queue is unavailable right now. Your experiment is saved and will start "
                        "by itself as soon as the queue is back.",
                    )
                return redirect(job)
    else:
        preset = PRESETS_BY_KEY.get(request.GET.get("preset", ""), PRESETS_BY_KEY["chapter"])
        dataset = {"dataset": request.GET["dataset"]} if "dataset" in request.GET else {}
        form = JobForm(initial={**preset.initial, **dataset}, user=request.user)
    active = selectors.job_active_count(user=request.user)
    context = {"form": form, "active": active, "datasets": dataset_cards(), "presets": PRESETS,
               "preset": None if form.is_bound else preset.key}  # fmt: skip
    return render(request, "mlworker/job_new.html", context)


def cancel_note(job, viewer) -> str:
    """Who cancelled the job and when, as the viewer reads it: "You cancelled it", or the
    instructor's name for a student whose experiment an instructor stopped. Empty when nobody did."""
    if job.cancelled_by_id is None or job.state not in (JobState.CANCELLED, JobState.RUNNING):
        return ""
    by = job.cancelled_by
    name = by.get_full_name() or by.username
    if by.pk == viewer.pk:
        who = "You"
    elif by.pk == job.owner_id:
        who = name
    else:
        who = f"{name}, an instructor of your class," if viewer.pk == job.owner_id else f"{name}, an instructor,"
    when = timezone.localtime(job.cancelled_at)
    at = f"{when:%b} {when.day}, {when:%H:%M}"
    if job.state == JobState.RUNNING:
        return f"{who} asked to cancel it on {at}; it stops at its next batch."
    return f"{who} cancelled it on {at}."


def validation_note(job) -> str:
    """Why a finished job's error rate says little: too few validation images, or classes with none."""
    if job.state != JobState.SUCCEEDED or not job.n_valid:
        return ""
    absent = [name for name, row in zip(job.class_names, job.confusion, strict=False) if not sum(row)]
    small = job.n_valid < SMALL_VALIDATION
    if not small and not absent:
        return ""
    said = f"it was measured on {'only ' if small else ''}{job.n_valid} validation images"
    if absent:
        said += f", and none of them was a {' or a '.join(absent)}, so its mistakes on that class count nowhere"
    return (
        f"Read this error rate with care: {said}. A larger validation share, or more images of each class, "
        "gives a number to trust."
    )


@login_required
def job_detail(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id, read_only=True)
    epochs = list(job.epoch_rows.all())
    can_ask = bool(job.model_file) and selectors.models_usable_by(request.user).filter(pk=job.pk).exists()
    # Only the user's own: a classmate's predictions with a shared model are theirs alone.
    predictions = list(selectors.predictions_for(user=request.user, job=job)[:20]) if can_ask else []
    for p in predictions:
        p.job = job  # their labels are named by the job, without a query each
    validation_images = [
        {**t, "index": i, "sample": bool(t.get("sample")), "right": t["predicted"] == t["actual"],
         "predicted": job.class_name(t["predicted"]), "actual": job.class_name(t["actual"])}
        for i, t in enumerate(job.top_losses)
    ]  # fmt: skip
    return render(
        request,
        "mlworker/job_detail.html",
        {
            "job": job,
            "code": chapter_code(job.job_settings, folders=not job.is_cat_dog),
            "is_owner": job.owner_id == request.user.pk,
            "cancel_note": cancel_note(job, request.user),
            "validation_note": validation_note(job),
            "can_ask": can_ask,
            "epochs": epochs,
            "position": selectors.job_queue_position(job=job),
            "class_names": job.class_names,
            "confusion_rows": list(zip(job.class_names, job.confusion, strict=False)),
            "top_losses": [t for t in validation_images if not t["sample"]],
            # A sample of the validation set, right and wrong, to ask the model about; older jobs kept
            # only their top losses.
            "to_pick": [t for t in validation_images if t["sample"]] or validation_images,
            "predictions": predictions,
            "predict_form": PredictForm(),
            "epochs_data": [{"epoch": e.epoch, "valid_loss": e.valid_loss} for e in epochs],
        },
    )


def _status_payload(job) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "live": job.is_live,
        "phase": job.phase,
        "epoch": job.epoch,
        "total_epochs": job.total_epochs,
        "batch": job.batch,
        "n_batches": job.n_batches,
        "progress": job.progress,
        "queue_position": selectors.job_queue_position(job=job),
        "cancel_requested": job.cancel_requested,
        "device": job.device,
        "error_message": job.error_message,
        "error_rate": job.error_rate,
        "train_losses": job.train_losses,
        "epochs": [
            {
                "epoch": e.epoch,
                "phase": e.phase,
                "train_loss": e.train_loss,
                "valid_loss": e.valid_loss,
                "error_rate": e.error_rate,
                "accuracy": e.accuracy,
                "seconds": e.seconds,
            }
            for e in job.epoch_rows.all()
        ],
    }


@login_required
@require_GET
@never_cache
def job_status(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id, read_only=True)
    return JsonResponse(_status_payload(job))


@login_required
@require_POST
def job_cancel(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id)
    job = services.job_cancel(job=job, by=request.user)
    if job.state == JobState.CANCELLED:
        messages.info(request, "The experiment was cancelled.")
    elif job.cancel_requested and job.is_live:
        messages.info(request, "Stopping the experiment at its next batch.")
    return redirect(job)


@login_required
@require_GET
def job_file(request, job_id, kind, index=0):
    """Serve a job's stored files to its owner (never through a public media URL); its top-loss
    images also to the instructors of the owner's class, who read the job page."""
    job = selectors.job_get(user=request.user, job_id=job_id, read_only=kind == "top-loss")
    if kind == "model" and job.model_file:
        name, filename = job.model_file, f"journey-job-{job.pk}.pkl"
    elif kind == "top-loss" and index < len(job.top_losses):
        name, filename = job.top_losses[index]["image_path"], None
    else:
        raise Http404("No such file for this job.")
    return _stored_file(name, filename=filename)


def _stored_file(name: str, *, filename: str | None = None) -> HttpResponse:
    """A stored file, for a user the caller has already checked: sent through this view, or with
    JOURNEY_SIGNED_LINKS a redirect to a link to that one object that the store honours for
    AWS_QUERYSTRING_EXPIRE seconds (the web then carries no file bytes). 404 if it is gone."""
    if settings.JOURNEY_SIGNED_LINKS:
        if not default_storage.exists(name):
            raise Http404("The file is gone from storage.")
        disposition = {"ResponseContentDisposition": f'attachment; filename="{filename}"'} if filename else {}
        response = HttpResponseRedirect(
            default_storage.url(name, parameters=disposition, expire=settings.AWS_QUERYSTRING_EXPIRE)
        )
        # A link that expires must not be kept by a cache and handed out again later.
        patch_cache_control(response, private=True, no_store=True)
        return response
    try:
        fh = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("The file is gone from storage.") from None
    return FileResponse(fh, as_attachment=filename is not None, filename=filename or "")


@login_required
@require_GET
def jobs_compare(request):
    try:
        a_id, b_id = int(request.GET["a"]), int(request.GET["b"])
    except (KeyError, ValueError):
        messages.error(request, "Pick two of your experiments to compare.")
        return redirect("mlworker:jobs")
    a = selectors.job_get(user=request.user, job_id=a_id)
    b = selectors.job_get(user=request.user, job_id=b_id)
    fields = [*SETTING_NAMES, "device"]

    def shown(job, f):
        return job.dataset_label if f == "dataset" else getattr(job, f)  # an upload by its name, not its key

    rows = [(f, shown(a, f), shown(b, f), shown(a, f) != shown(b, f)) for f in fields]
    return render(request, "mlworker/compare.html", {"a": a, "b": b, "rows": rows})


# ---------------------------------------------------------------- predictions and the model gallery


@login_required
@require_POST
@capped_uploads(prediction_limit)
def predict(request, job_id):
    job = selectors.model_usable_get(user=request.user, job_id=job_id)
    if "validation" in request.POST:
        try:
            index = int(request.POST["validation"])
            prediction = services.prediction_from_validation(user=request.user, job=job, index=index)
        except (ValueError, PermissionError):
            raise Http404("No such validation image.") from None
        _warn_if_unsent(request, [prediction])
        return redirect(prediction)
    form = PredictForm(request.POST, request.FILES)
    if not form.is_valid():
        # Every file cut off as it arrived: say so, not that none was chosen.
        for error in request.uploads_refused or form.errors.get("images", []):
            messages.error(request, error)
        return redirect(job)
    # The files themselves, not their bytes: each is read only up to its size limit, one at a time.
    uploads = [services.Upload(name=f.name, data=f) for f in form.cleaned_data["images"]]
    try:
        created, refused = services.prediction_submit(
            user=request.user, job=job, uploads=uploads, cut_off=request.uploads_refused
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(job)
    if not created:
        for message in refused:
            messages.error(request, message)
        return redirect(job)
    _warn_if_unsent(request, created)
    if len(created) == 1:
        return redirect(created[0])
    return redirect(reverse("mlworker:batch", args=[job.pk, created[0].batch]))


def _warn_if_unsent(request, predictions) -> None:
    if Prediction.objects.filter(pk__in=[p.pk for p in predictions], dispatched_at__isnull=True).exists():
        messages.warning(request, MSG_PREDICT_QUEUE_DOWN)


def _model_context(user, job) -> dict:
    """What a prediction page may say and link about its model: it may since have been deleted,
    unshared, or the user may have left the class."""
    return {
        "job": job,
        "job_readable": selectors.job_can_read(user=user, job_id=job.pk),
        "model_deleted": not job.model_file,
    }


@login_required
def prediction_detail(request, prediction_id):
    prediction = selectors.prediction_get(user=request.user, prediction_id=prediction_id)
    return render(
        request, "mlworker/prediction.html", {"p": prediction, **_model_context(request.user, prediction.job)}
    )


@login_required
@require_GET
@never_cache
def prediction_status(request, prediction_id):
    p = selectors.prediction_get(user=request.user, prediction_id=prediction_id)
    return JsonResponse(
        {"id": p.pk, "state": p.state, "live": p.is_live, "label": p.label, "error_message": p.error_message}
    )


@login_required
@require_GET
def prediction_image(request, prediction_id, size):
    if size not in ("thumb", "full"):
        raise Http404("No such image size.")
    p = selectors.prediction_get(user=request.user, prediction_id=prediction_id)
    return _stored_file(p.thumbnail if size == "thumb" else p.image)


@login_required
def prediction_batch(request, job_id, batch):
    predictions = selectors.prediction_batch_get(user=request.user, job_id=job_id, batch=batch)
    job = predictions[0].job
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="journey-job-{job.pk}-predictions.csv"'
        writer = csv.writer(response)
        classes = job.classes
        writer.writerow(["file", "state", "predicted", *[f"p({c})" for c in classes], "error"])
        for p in predictions:
            probs = [f"{v:.6f}" for v in p.probabilities] if p.probabilities else [""] * len(classes)
            writer.writerow([p.source_name, p.state, p.label, *probs, p.error_message])
        return response
    live = any(p.is_live for p in predictions)
    return render(
        request,
        "mlworker/batch.html",
        {
            "predictions": predictions,
            "live": live,
            "skipped": [message for p in predictions for message in p.skipped],
            **_model_context(request.user, job),
        },
    )


def _with_share_choices(objects, classrooms):
    """Attach to each owned object the classes it is shared with and the user's other classes."""
    for obj in objects:
        obj.shared = list(obj.shared_with.all())
        obj.share_choices = [c for c in classrooms if c not in obj.shared]
    return objects


@login_required
def models(request):
    # django_session, auth_user, the user's classes, own models; with classes also: the classes
    # each model is shared with (one prefetch), classmates' shared models
    classrooms = list(classrooms_of(request.user))
    own = selectors.models_list(user=request.user)
    if classrooms:
        own = _with_share_choices(list(own.prefetch_related("shared_with")), classrooms)
    return render(
        request,
        "mlworker/models.html",
        {
            "models": own,
            "shared": selectors.models_shared_with(user=request.user) if classrooms else [],
            "has_classes": bool(classrooms),
        },
    )


# What may be shared, by the URL's kind: how to find an owned one (or 404), and its gallery.
SHAREABLE = {
    "model": (lambda user, pk: selectors.model_get(user=user, job_id=pk), "mlworker:models"),
    "dataset": (lambda user, pk: selectors.dataset_get(user=user, dataset_id=pk), "mlworker:datasets"),
}


@login_required
@require_POST
def sharing(request, kind: str, pk: int, share: bool):
    """Share an owned model or data set with some of the owner's classes, or stop sharing it with some."""
    get, gallery = SHAREABLE[kind]
    item = get(request.user, pk)
    form = ShareForm(request.POST, classrooms=classrooms_of(request.user) if share else item.shared_with.all())
    if not form.is_valid():
        messages.error(request, form.errors["classrooms"][0])
        return redirect(gallery)
    chosen = list(form.cleaned_data["classrooms"])
    try:
        (services.share if share else services.unshare)(item=item, by=request.user, classrooms=chosen)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        names = ", ".join(c.name for c in chosen)
        messages.success(request, f"{item.display_name} is {'now' if share else 'no longer'} shared with {names}.")
    return redirect(gallery)


@login_required
@require_POST
def model_rename(request, job_id):
    job = selectors.model_get(user=request.user, job_id=job_id)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.model_rename(job=job, by=request.user, name=form.cleaned_data["name"])
        messages.success(request, "Renamed.")
    else:
        messages.error(request, "A name needs 1 to 100 characters.")
    return redirect("mlworker:models")


@login_required
@require_POST
def model_delete(request, job_id):
    job = selectors.model_get(user=request.user, job_id=job_id)
    services.model_delete(job=job, by=request.user)
    messages.info(request, f"Deleted the model of {job.display_name} and its files.")
    return redirect("mlworker:models")


@login_required
@capped_uploads(dataset_limit)
def datasets(request):
    if request.method == "POST":
        form = DatasetUploadForm(request.POST, request.FILES)
        if request.uploads_refused:
            # The zip was cut off as it arrived: say so beside the field, not that none was chosen.
            form.errors["archive"] = form.error_class(request.uploads_refused)
        if form.is_valid():
            try:
                dataset = services.dataset_upload(
                    user=request.user, name=form.cleaned_data["name"], rule=form.cleaned_data["rule"],
                    upload=form.cleaned_data["archive"],
                )  # fmt: skip
            except ValidationError as exc:
                form.add_error("archive", exc)
            else:
                dataset.refresh_from_db(fields=["dispatched_at"])
                if dataset.dispatched_at is None:
                    messages.warning(
                        request,
                        "Uploaded. The service that checks images is unavailable right now; your zip is saved "
                        "and will be checked as soon as it is back. This page updates by itself.",
                    )
                else:
                    messages.info(request, "Uploaded. Journey is checking the images; this page updates by itself.")
                return redirect("mlworker:datasets")
    else:
        form = DatasetUploadForm()
    mine = _with_share_choices(list(selectors.datasets_own(user=request.user)), list(classrooms_of(request.user)))
    checking = any(d.state == "checking" for d in mine)
    return render(
        request,
        "mlworker/datasets.html",
        {
            "form": form,
            "datasets": mine,
            "checking": checking,
            "shared": selectors.datasets_shared_with(user=request.user),
        },
    )


@login_required
@require_GET
def dataset_sample(request, dataset_id, index):
    dataset = selectors.dataset_get_to_read(user=request.user, dataset_id=dataset_id)
    if index >= len(dataset.samples):
        raise Http404("No such sample.")
    return _stored_file(dataset.samples[index][1])


@login_required
@require_POST
def dataset_delete(request, dataset_id):
    dataset = selectors.dataset_get(user=request.user, dataset_id=dataset_id)
    services.dataset_delete(dataset=dataset, by=request.user)
    messages.info(request, f"Deleted the data set {dataset.name} and its images.")
    return redirect("mlworker:datasets")
