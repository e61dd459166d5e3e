"""Sharing a trained model or a data set with classes: one rule for both.

Only the owner shares, only something ready to use, and only with classes the owner is in; the
members of those classes may then use it (ask the model, train on the data set) for as long as
they and the owner are both in the class (mlworker.selectors reads that at every request).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from accounts.selectors import classrooms_of
from mlworker.models import DatasetState, JobState, TrainingJob, UserDataset

Shareable = TrainingJob | UserDataset


@dataclass(frozen=True)
class _Kind:
    noun: str
    ready: Callable[[Shareable], bool]
    not_ready: str
    code: str


_KINDS: dict[type, _Kind] = {
    TrainingJob: _Kind(
        "model", lambda job: job.state == JobState.SUCCEEDED and bool(job.model_file),
        "Only a trained model that is still kept can be shared.", "no_model",
    ),
    UserDataset: _Kind(
        "data set", lambda dataset: dataset.state == DatasetState.READY,
        "Only a checked, ready data set can be shared.", "not_ready",
    ),
}  # fmt: skip


def share(*, item: Shareable, by, classrooms) -> Shareable:
    """Let the members of these classes (the owner's own) use the model or data set."""
    kind = _KINDS[type(item)]
    if item.owner_id != by.pk:
        raise PermissionError(f"Only the {kind.noun}'s owner can share it.")
    if not kind.ready(item):
        raise ValidationError(kind.not_ready, code=kind.code)
    item.shared_with.add(*_classrooms_checked(by, classrooms))
    return item


def unshare(*, item: Shareable, by, classrooms=None) -> Shareable:
    """Stop sharing with these classes (all of them when None). What classmates made with it stays
    theirs: their predictions with a model, the models they trained on a data set."""
    if item.owner_id != by.pk:
        raise PermissionError(f"Only the {_KINDS[type(item)].noun}'s owner can stop sharing it.")
    if classrooms is None:
        item.shared_with.clear()
    else:
        item.shared_with.remove(*classrooms)
    return item


def _classrooms_checked(by, classrooms) -> list:
    classrooms = list(classrooms)
    if not classrooms:
        raise ValidationError("Choose a class to share with.", code="no_class")
    mine = set(classrooms_of(by).filter(pk__in=[c.pk for c in classrooms]).values_list("pk", flat=True))
    if any(c.pk not in mine for c in classrooms):
        raise ValidationError("You can share only with a class you are in.", code="not_member")
    return classrooms
