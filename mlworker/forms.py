from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from functools import lru_cache

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from mlworker import assets
from mlworker.archives import RULES
from mlworker.jobsettings import SETTING_NAMES, JobSettings, knob
from mlworker.presets import CHAPTER_DEFAULTS, PRESETS_BY_KEY  # noqa: F401 - CHAPTER_DEFAULTS: the form's defaults
from mlworker.selectors import dataset_ready_list
from mlworker.splits import split_sizes, validation_warning

QUICK_PRESET = PRESETS_BY_KEY["quick"].initial


class OptionSelect(forms.Select):
    """A select whose unavailable options are disabled and say why."""

    def __init__(self, *args, unavailable: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.unavailable = unavailable or {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in self.unavailable:
            option["attrs"]["disabled"] = True
            option["label"] = f"{label} (not available here)"
        return option


class ArchSelect(forms.Select):
    """The architectures, those without pretrained weights here marked as trainable from scratch only
    (static/js/job.js then unticks 'pretrained' when one is picked)."""

    def __init__(self, *args, no_weights: set[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.no_weights = no_weights or set()

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in self.no_weights:
            option["attrs"]["data-no-weights"] = "1"
            option["label"] = f"{label} (from scratch only here)"
        return option


@dataclass(frozen=True)
class Missing:
    """A data set or set of weights this server lacks, as the form's page tells it."""

    label: str
    reason: str  # for students: plain, and what they can do instead
    detail: str  # for staff: where the server looked and what to set


def short_name(label: str) -> str:
    return label.split(" (")[0]  # "ResNet-34 (the chapter's)" -> "ResNet-34"


PRETRAINED_LABEL = knob("pretrained").metadata["label"]
PICK_ANOTHER_DATASET = "Pick another data set, or train on your own images."


def setting_field(name: str, field_class: type[forms.Field], **kwargs) -> forms.Field:
    """A form field for one job setting, with the label, help, default and bounds of mlworker.jobsettings."""
    f = knob(name)
    meta = f.metadata
    if "minimum" in meta:
        kwargs.update(min_value=meta["minimum"], max_value=meta.get("maximum"))
    if f.default is not None and field_class is not forms.ChoiceField:
        kwargs.setdefault("initial", f.default)
    return field_class(label=meta["label"], help_text=meta["help"], **kwargs)


class JobForm(forms.Form):
    dataset = setting_field("dataset", forms.ChoiceField)
    arch = setting_field("arch", forms.ChoiceField)
    pretrained = setting_field("pretrained", forms.BooleanField, required=False)
    epochs = setting_field("epochs", forms.IntegerField)
    image_size = setting_field("image_size", forms.IntegerField)
    valid_pct = setting_field("valid_pct", forms.FloatField)
    seed = setting_field("seed", forms.IntegerField)
    batch_size = setting_field("batch_size", forms.IntegerField)
    learning_rate = setting_field("learning_rate", forms.FloatField, required=False)
    lr_find = setting_field("lr_find", forms.BooleanField, required=False)
    reproducible = setting_field("reproducible", forms.BooleanField, required=False)
    per_class = setting_field("per_class", forms.IntegerField, required=False)
    small_validation_ok = forms.BooleanField(
        label="Train anyway, with this small validation set", required=False,
        help_text="Its error rate will be rough: the result page says so too.",
    )  # fmt: skip

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.dataset_options = assets.dataset_options()
        self.arch_options = assets.arch_options()
        ready = list(dataset_ready_list(user=user)) if user else []
        own = [(d.key, _dataset_label(d, user)) for d in ready]
        self.own_sizes = {d.key: d.n_images for d in ready}
        self.own_classes = {d.key: d.classes for d in ready}
        self.validation_warning = ""
        self.fields["dataset"].choices = [(o.key, o.label) for o in self.dataset_options] + own
        self.fields["dataset"].widget = OptionSelect(
            choices=self.fields["dataset"].choices,
            unavailable={o.key: o.reason for o in self.dataset_options if not o.available},
        )
        self.fields["arch"].choices = [(o.key, o.label) for o in self.arch_options]
        self.fields["arch"].widget = ArchSelect(
            choices=self.fields["arch"].choices, no_weights={o.key for o in self.arch_options if not o.available}
        )
        self.is_staff = bool(user and user.is_staff)
        for name in SETTING_NAMES:
            if not (setting := knob(name).metadata.get("limit")):
                continue
            # Operators' limits are Django settings, read per request, so that operators can change them.
            field = self.fields[name]
            limit = min(x for x in (getattr(settings, setting), field.max_value) if x is not None)
            field.max_value = limit
            field.validators.append(MaxValueValidator(limit))
            field.widget.attrs["max"] = limit
            field.help_text = f"{field.help_text} At most {limit} here.".strip()
        if not self.is_bound:
            self._propose_batch_size()

    def n_images(self, key: str, per_class: int | None = None) -> int | None:
        """How many images a run on `key` reads; None when we cannot tell (not here, not theirs)."""
        if key in self.own_sizes:
            return self.own_sizes[key]
        card = next((c for c in dataset_cards() if c["key"] == key), None)
        if card is None or not card["available"]:
            return None
        if card["per_class"]:  # the silhouettes: a limit per class keeps the first images of each
            return sum(n if per_class is None else min(n, per_class) for n in card["per_class"].values())
        return card["n_images"] or None

    def _propose_batch_size(self) -> None:
        """A small data set picked up front (its "Train on it" link) gets a batch size it can fill."""
        key = self.initial.get("dataset")
        n = self.n_images(key, self.initial.get("per_class")) if key else None
        if n is None:
            return
        field = self.fields["batch_size"]
        valid_pct = self.initial.get("valid_pct", self.fields["valid_pct"].initial)
        wanted = self.initial.get("batch_size", field.initial)
        n_train, _ = split_sizes(n, valid_pct)
        if wanted <= n_train:
            return
        # A power of two that gives a few batches an epoch: one batch of everything learns little.
        proposed = 2
        while proposed * 2 <= n_train // 2:
            proposed *= 2
        self.initial["batch_size"] = proposed
        field.help_text = (
            f"Set to {proposed} for this data set: it gives {n_train} training images at a validation share "
            f"of {valid_pct:g}, and a batch cannot be larger than that. {field.help_text}"
        )

    def _check_size(self, data: dict) -> None:
        """Refuse, before a job is queued, settings the data set is too small for (see split_sizes)."""
        key, valid_pct, batch_size = data.get("dataset"), data.get("valid_pct"), data.get("batch_size")
        if not key or valid_pct is None:
            return
        per_class = data.get("per_class") if key.startswith("silhouettes") else None
        n = self.n_images(key, per_class)
        if n is None:
            return
        n_train, n_valid = split_sizes(n, valid_pct)
        if n_valid == 0:
            least = max(self.fields["valid_pct"].min_value, math.ceil(100 / n) / 100)
            while split_sizes(n, least)[1] == 0:
                least = round(least + 0.01, 2)
            self.add_error(
                "valid_pct", f"At a validation share of {valid_pct:g}, none of this data set's {n} images would "
                f"be kept to check the model. Use a share of at least {least:g}."
            )  # fmt: skip
        elif n_train < 2:
            self.add_error(
                "valid_pct", f"At a validation share of {valid_pct:g}, only {n_train} of this data set's {n} "
                "images would be left to train on. Lower the validation share, or use more images."
            )  # fmt: skip
        elif key in self.own_classes and (warning := validation_warning(self.own_classes[key], valid_pct)):
            # A warning, not a refusal: the student may go on once they have read it.
            self.validation_warning = warning
            if not data.get("small_validation_ok"):
                self.add_error(
                    "valid_pct", f"{warning} Raise the validation share or add images; or tick "
                    f"“{self.fields['small_validation_ok'].label}” below to go on."
                )  # fmt: skip
        if not self.errors.get("valid_pct") and batch_size is not None and batch_size > n_train:
            self.add_error(
                "batch_size", f"This data set gives {n_train} training images at a validation share of "
                f"{valid_pct:g} ({n_valid} of its {n} images are kept to check the model). That is not one "
                f"full batch of {batch_size}, and fastai skips a batch that is not full, so nothing would "
                f"train. Choose a batch size of {n_train} or less."
            )  # fmt: skip

    # Students read what is missing and what they can pick instead; where the server looked (paths,
    # settings) is for staff, as in `manage.py mlassets`.

    def _train_from_scratch_instead(self, name: str) -> str:
        others = " or ".join(short_name(o.label) for o in self.arch_options if o.available)
        pick = f"Pick {others}, or untick" if others else "Untick"
        return f"{pick} '{PRETRAINED_LABEL}' to train {name} from scratch."

    @property
    def unavailable(self) -> list[Missing]:
        datasets = [
            Missing(o.label, f"Its images are not installed on this server. {PICK_ANOTHER_DATASET}", o.reason)
            for o in self.dataset_options
            if not o.available
        ]
        archs = [
            Missing(o.label, "Its pretrained weights are not installed on this server. "
                    + self._train_from_scratch_instead("it"), o.reason)
            for o in self.arch_options
            if not o.available
        ]  # fmt: skip
        return datasets + archs

    def _with_detail(self, message: str, detail: str) -> str:
        return f"{message} (For staff: {detail})" if self.is_staff else message

    def clean_dataset(self):
        key = self.cleaned_data["dataset"]
        if key.startswith("user-"):
            return key  # only the data sets this user may train on, now, are among the choices
        ok, reason = assets.dataset_available(key)
        if not ok:
            name = assets.DATASET_LABELS[key]
            raise forms.ValidationError(
                self._with_detail(f"{name} is not installed on this server. {PICK_ANOTHER_DATASET}", reason)
            )
        return key

    def clean(self):
        data = super().clean()
        arch, pretrained = data.get("arch"), data.get("pretrained")
        if arch:
            ok, reason = assets.arch_available(arch, bool(pretrained))
            if not ok:
                name = short_name(assets.ARCH_LABELS[arch])
                self.add_error("arch", self._with_detail(
                    f"{name}'s pretrained weights are not installed on this server. "
                    + self._train_from_scratch_instead(name), reason
                ))  # fmt: skip
        if data.get("per_class") and not str(data.get("dataset", "")).startswith("silhouettes"):
            self.add_error("per_class", "Images per class can only be limited for the silhouette data sets.")
        if data.get("lr_find") and data.get("learning_rate"):
            self.add_error("learning_rate", "Choose either a learning rate or the finder, not both.")
        self._check_size(data)
        return data

    def job_settings(self) -> JobSettings:
        return JobSettings(**{name: self.cleaned_data.get(name) for name in SETTING_NAMES})


def _dataset_label(dataset, user) -> str:
    size = f"{dataset.n_images} images, {len(dataset.classes)} classes"
    if dataset.owner_id == user.pk:
        return f"Your data: {dataset.name} ({size})"
    return f"Shared by {owner_name(dataset.owner)}: {dataset.name} ({size})"


def owner_name(user) -> str:
    return user.get_full_name() or user.username


@lru_cache(maxsize=1)
def dataset_cards() -> tuple[dict, ...]:
    """Size, classes and a few sample images (as data URIs) of each data set, for the form.

    Computed once per web process: the silhouettes are read from the package's pickle.
    """
    from mlworker import datasets

    cards = []
    for option in assets.dataset_options():
        summary = datasets.dataset_summary(option.key)
        samples = []
        if option.available:
            try:
                samples = [(label, _png_data_uri(image)) for label, image in datasets.sample_images(option.key, n=6)]
            except assets.AssetMissing:
                samples = []
        cards.append({**summary, "samples": samples})
    return tuple(cards)


def _png_data_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field; each is checked as an image by the service, not here."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip"}))
        kwargs.setdefault("allow_empty_file", True)  # an empty file gets the service's clear message
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if not files:
            raise forms.ValidationError("Choose an image to send to your model.")
        return [super(MultipleFileField, self).clean(f, initial) for f in files]


class PredictForm(forms.Form):
    images = MultipleFileField(
        label="Images",
        help_text="One image, several, or a zip of images for a table of predictions "
        "(JPEG, PNG, GIF, WebP, BMP, TIFF).",
    )


class RenameForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)


class DatasetUploadForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="For example: my cat photos.")
    rule = forms.ChoiceField(label="How are the images labelled?", choices=list(RULES.items()), initial="folders")
    archive = forms.FileField(
        label="Zip of images",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
        help_text="At least 2 classes and 5 images per class. JPEG, PNG, GIF, WebP, BMP or TIFF.",
    )


class ShareForm(forms.Form):
    """Which of the owner's classes to share with (to share) or to stop sharing with."""

    classrooms = forms.ModelMultipleChoiceField(
        label="Classes", queryset=None, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose a class.", "invalid_choice": "Choose one of your classes."},
    )  # fmt: skip

    def __init__(self, *args, classrooms, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["classrooms"].queryset = classrooms
