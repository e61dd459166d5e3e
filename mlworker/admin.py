from django.contrib import admin

from accounts.history import AnnouncesHistory
from mlworker.models import JobEpoch, TrainingJob


class JobEpochInline(admin.TabularInline):
    model = JobEpoch
    extra = 0
    can_delete = False
    readonly_fields = ("phase", "epoch", "train_loss", "valid_loss", "error_rate", "accuracy", "seconds")


@admin.register(TrainingJob)
class TrainingJobAdmin(AnnouncesHistory, admin.ModelAdmin):
    history_owner = "owner_id"
    list_display = ("id", "owner", "state", "dataset", "arch", "epochs", "image_size", "error_rate", "created_at")
    list_filter = ("state", "dataset", "arch")
    list_select_related = ("owner",)
    readonly_fields = ("run_token", "heartbeat_at", "attempts", "worker", "device")
    inlines = [JobEpochInline]
