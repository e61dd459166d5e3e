from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mlworker.jobsettings import SETTING_NAMES, JobSettings, knob


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


LIVE_STATES = (JobState.QUEUED, JobState.RUNNING)
CAT_DOG_NAMES = {"False": "dog (False)", "True": "cat (True)"}  # fastai's vocab of the chapter's is_cat
USER_DATASET_PREFIX = "user-"  # a job's `dataset` for a student's upload: "user-<UserDataset pk>"


def _bounds(name: str) -> list:
    """Validators for a job setting's column: the bounds of mlworker.jobsettings."""
    meta = knob(name).metadata
    return [MinValueValidator(meta["minimum"])] + (
        [MaxValueValidator(meta["maximum"])] if meta.get("maximum") is not None else []
    )


class TrainingJob(models.Model):
    """One fine-tuning run. The database row, not the broker message, is the truth."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_jobs")
    created_at = models.DateTimeField(auto_now_add=True)
    name = models.CharField(max_length=100, blank=True, help_text="The student's name for the trained model.")

    # What the student asked for: the chapter's knobs, one column each of mlworker.jobsettings.JobSettings.
    dataset = models.CharField(max_length=40)
    dataset_name = models.CharField(
        max_length=100, blank=True, help_text="An uploaded data set's name when the job was submitted."
    )
    arch = models.CharField(max_length=40)
    pretrained = models.BooleanField(default=True)
    epochs = models.PositiveSmallIntegerField(validators=_bounds("epochs"))
    image_size = models.PositiveSmallIntegerField(validators=_bounds("image_size"))
    valid_pct = models.FloatField(validators=_bounds("valid_pct"))
    seed = models.IntegerField(validators=_bounds("seed"))
    batch_size = models.PositiveSmallIntegerField(validators=_bounds("batch_size"))
    learning_rate = models.FloatField(null=True, blank=True, validators=_bounds("learning_rate"))
    lr_find = models.BooleanField(default=False)
    reproducible = models.BooleanField(default=False)
    per_class = models.PositiveIntegerField(
        null=True, blank=True, help_text="Limit images per class (tiny runs).", validators=_bounds("per_class")
    )

    # Life cycle.
    state = models.CharField(max_length=12, choices=JobState.choices, default=JobState.QUEUED)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    run_token = models.CharField(max_length=32, blank=True, help_text="Which claim owns the running job.")
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who asked to cancel: the owner, or an instructor of their class.",
    )  # fmt: skip
    cancelled_at = models.DateTimeField(null=True, blank=True, help_text="When the cancel was asked for.")
    error_message = models.TextField(blank=True, help_text="Shown to the student: what went wrong and what to do.")

    # Live progress, written by the training callback a few times a second at most.
    phase = models.CharField(max_length=20, blank=True)
    epoch = models.PositiveSmallIntegerField(default=0)
    total_epochs = models.PositiveSmallIntegerField(default=0)
    batch = models.PositiveIntegerField(default=0)
    n_batches = models.PositiveIntegerField(default=0)
    progress = models.FloatField(default=0.0)
    train_losses = models.JSONField(default=list, blank=True)

    # Results.
    error_rate = models.FloatField(null=True, blank=True)
    accuracy = models.FloatField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    classes = models.JSONField(default=list, blank=True)
    confusion = models.JSONField(default=list, blank=True)
    top_losses = models.JSONField(default=list, blank=True)
    lr_find_result = models.JSONField(null=True, blank=True)
    n_train = models.PositiveIntegerField(null=True, blank=True)
    n_valid = models.PositiveIntegerField(null=True, blank=True)
    model_file = models.CharField(max_length=300, blank=True, help_text="Exported learner in file storage.")
    shared_with = models.ManyToManyField(
        "accounts.Classroom", blank=True, related_name="shared_models",
        help_text="Classes whose members may look at and ask this model (while the owner is in them too).",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            models.Index(fields=["owner", "-created_at"]),
        ]

    def __str__(self):
        return f"Job {self.pk} ({self.state})"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("mlworker:job", args=[self.pk])

    @property
    def display_name(self) -> str:
        return self.name or f"Experiment #{self.pk}"

    @property
    def job_settings(self) -> JobSettings:
        """What the student asked for, as it was submitted."""
        return JobSettings(**{name: getattr(self, name) for name in SETTING_NAMES})

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def dataset_label(self) -> str:
        """The data set as pages name it: an upload by its name (kept on the job, so it outlives the
        upload), a built-in one by its key."""
        if self.dataset.startswith(USER_DATASET_PREFIX):
            return self.dataset_name or "a deleted upload"
        return self.dataset

    @property
    def is_cat_dog(self) -> bool:
        return self.dataset in {"pets", "silhouettes-catdog"}

    def class_name(self, label: str) -> str:
        """A class as students read it everywhere: the chapter's is_cat gives False/True, so say which is which."""
        return CAT_DOG_NAMES.get(label, label) if self.is_cat_dog else label

    @property
    def class_names(self) -> list[str]:
        return [self.class_name(c) for c in self.classes]


class JobEpoch(models.Model):
    """One row of the table fastai prints: a finished epoch's losses and metrics."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="epoch_rows")
    phase = models.CharField(max_length=20)
    epoch = models.PositiveSmallIntegerField()
    train_loss = models.FloatField()
    valid_loss = models.FloatField()
    error_rate = models.FloatField()
    accuracy = models.FloatField()
    seconds = models.FloatField()

    class Meta:
        ordering = ["job", "epoch"]
        constraints = [models.UniqueConstraint(fields=["job", "epoch"], name="one_row_per_job_epoch")]


class PredictionState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Prediction(models.Model):
    """One image sent to a trained model: the chapter's `learn.predict(img)`."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="predictions")
    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="predictions")
    batch = models.UUIDField(null=True, blank=True, db_index=True, help_text="Set when sent with other images.")
    created_at = models.DateTimeField(auto_now_add=True)
    source_name = models.CharField(max_length=255, help_text="The uploaded file's name, as the student knows it.")
    image = models.CharField(max_length=300, help_text="The checked, re-encoded image in file storage.")
    thumbnail = models.CharField(max_length=300)
    stored_bytes = models.PositiveBigIntegerField(default=0, help_text="Image and thumbnail, counted in the quota.")
    state = models.CharField(max_length=12, choices=PredictionState.choices, default=PredictionState.QUEUED)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When the broker last took its message.")
    started_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims so far; a lost worker's is retried.")
    worker = models.CharField(max_length=200, blank=True, help_text="The worker that claimed it last.")
    label = models.CharField(max_length=100, blank=True)
    classes = models.JSONField(default=list, blank=True)
    probabilities = models.JSONField(default=list, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    cache_hit = models.BooleanField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    skipped = models.JSONField(
        default=list, blank=True,
        help_text="Why files sent along with this one were not predicted, one sentence each (kept on the first "
        "prediction of the upload, so that its page, and its batch's, show them on every load).",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Prediction {self.pk} with job {self.job_id}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("mlworker:prediction", args=[self.pk])

    @property
    def is_live(self) -> bool:
        return self.state in (PredictionState.QUEUED, PredictionState.RUNNING)

    @property
    def rows(self):
        """(class, probability) pairs, most likely first."""
        return sorted(zip(self.classes, self.probabilities, strict=False), key=lambda r: -r[1])

    @property
    def label_name(self) -> str:
        return self.job.class_name(self.label)

    @property
    def named_rows(self):
        """(class as students read it, probability) pairs, most likely first."""
        return [(self.job.class_name(c), p) for c, p in self.rows]

    @property
    def cat_probability(self) -> float | None:
        """For the cat/dog models, the chapter's `probs[1]`: the probability of 'True' (a cat)."""
        if self.classes == ["False", "True"] and len(self.probabilities) == 2:
            return self.probabilities[1]
        return None


class DatasetState(models.TextChoices):
    CHECKING = "checking", "Checking"
    READY = "ready", "Ready"
    REJECTED = "rejected", "Rejected"


class UserDataset(models.Model):
    """A student's own images, uploaded as a zip and checked on the cpu queue before use."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=100)
    rule = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)
    upload = models.CharField(max_length=300, blank=True, help_text="The zip in storage until it is checked.")
    stored_bytes = models.PositiveBigIntegerField(
        default=0, help_text="What it keeps in storage (the zip while checked, then the images), counted in the quota."
    )
    state = models.CharField(max_length=12, choices=DatasetState.choices, default=DatasetState.CHECKING)
    classes = models.JSONField(default=dict, blank=True, help_text="label -> number of images")
    files = models.JSONField(default=list, blank=True, help_text="[folder, stored name] of every kept image")
    folders = models.JSONField(default=dict, blank=True, help_text="label -> folder name in storage")
    samples = models.JSONField(default=list, blank=True, help_text="[label, stored thumbnail] pairs")
    skipped = models.JSONField(default=list, blank=True, help_text="[file, reason] pairs")
    error_message = models.TextField(blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When the broker last took its check.")
    shared_with = models.ManyToManyField(
        "accounts.Classroom", blank=True, related_name="shared_datasets",
        help_text="Classes whose members may train on it (while the owner is in them too).",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.name

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        return f"{USER_DATASET_PREFIX}{self.pk}"

    @property
    def n_images(self) -> int:
        return sum(self.classes.values())


class WorkerPresence(models.Model):
    """A Celery worker that says it is alive: each worker process writes its row every
    JOURNEY_WORKER_BEAT_SECONDS (mlworker/workers.py). The jobs pages read these rows, so they never
    wait on the broker to learn who is online."""

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.CharField(max_length=200, help_text="The queues it consumes, comma-separated.")
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.hostname

    @property
    def queue_names(self) -> list[str]:
        return [q for q in self.queues.split(",") if q]
