"""A training job's settings, the chapter's knobs: the one definition of their names, defaults and bounds.

The form builds its fields from it, the submit service saves it as the job's columns (whose
validators come from it too), the runner hands the columns back to training as it, training checks
it again before a run, and the compare page lists it. Plain Python: the training process imports
it without Django.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields


def _knob(default, *, label: str, noun: str = "", help: str = "", **bounds):
    """A setting: its default, the form's label and help, the noun messages use, and its bounds:
    `minimum` and `maximum` (inclusive; a whole number when `whole`), `limit` the name of the Django
    setting that caps it further where an operator chooses (read per request by the form)."""
    return field(default=default, metadata={"label": label, "noun": noun, "help": help, **bounds})


# The chapter's own values are the defaults: valid_pct=0.2, seed=42, Resize(224), fine_tune(1), fastai's bs=64.
@dataclass(frozen=True)
class JobSettings:
    dataset: str = _knob("silhouettes-catdog", label="Data set", noun="the data set")
    arch: str = _knob("efficientnet_lite0", label="Architecture", noun="the architecture")
    pretrained: bool = _knob(
        True, label="Start from pretrained ImageNet weights",
        help="Turn this off to train from random weights and see what pretraining buys.",
    )  # fmt: skip
    epochs: int = _knob(
        1, label="Epochs (fine_tune)", noun="the number of epochs", whole=True, minimum=1, limit="JOURNEY_MAX_EPOCHS"
    )
    image_size: int = _knob(
        224, label="Image size (pixels)", noun="the image size", whole=True, minimum=32, maximum=1024,
        limit="JOURNEY_MAX_IMAGE_SIZE",
        help="The chapter uses Resize(224). Smaller is faster, larger can be more accurate.",
    )  # fmt: skip
    valid_pct: float = _knob(
        0.2, label="Validation share (valid_pct)", noun="the validation share", minimum=0.05, maximum=0.5
    )
    seed: int = _knob(42, label="Seed", noun="the seed", whole=True, minimum=0, maximum=2**31 - 1)
    # BatchNorm in fastai's head cannot train on batches of one.
    batch_size: int = _knob(
        64, label="Batch size", noun="the batch size", whole=True, minimum=2, limit="JOURNEY_MAX_BATCH_SIZE"
    )
    learning_rate: float | None = _knob(
        None, label="Learning rate", noun="the learning rate", minimum=1e-6, maximum=1.0,
        help="Leave empty for fastai's default (0.002), or let the finder choose.",
    )  # fmt: skip
    lr_find: bool = _knob(
        False, label="Run the learning-rate finder first",
        help="fastai's lr_find tries rising rates and suggests one; its plot appears with the results.",
    )  # fmt: skip
    reproducible: bool = _knob(
        False, label="Same numbers on every run (slower on a GPU)",
        help="On a GPU, cuDNN's deterministic mode: the same seed then gives the same results to the last "
        "digit, at some cost in speed. It changes nothing on a CPU.",
    )  # fmt: skip
    # Limits the data for quick, rough runs (the silhouette data sets only); at least a data set's own minimum.
    per_class: int | None = _knob(
        None, label="Images per class", noun="images per class", whole=True, minimum=5,
        help="Leave empty to use every image. A small number makes a quick, rough run.",
    )  # fmt: skip


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(JobSettings))


def knob(name: str) -> Field:
    """One setting's dataclass field: its default and, in `metadata`, its label, help and bounds."""
    return JobSettings.__dataclass_fields__[name]


def settings_problem(settings: JobSettings) -> str:
    """The first setting outside its bounds, in words a student can act on; "" when all are within."""
    for f in fields(JobSettings):
        meta, value = f.metadata, getattr(settings, f.name)
        lo, hi = meta.get("minimum"), meta.get("maximum")
        if (lo is None and hi is None) or (value is None and f.default is None):
            continue  # no bounds, or an optional setting left empty
        noun = meta["noun"][0].upper() + meta["noun"][1:]
        whole = meta.get("whole", False)
        if whole:
            kind_ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            kind_ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not kind_ok or (lo is not None and value < lo) or (hi is not None and value > hi):
            number = "a whole number" if whole else "a number"
            lo, hi = (lo, hi) if whole else (f"{lo:g}", None if hi is None else f"{hi:g}")
            span = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
            empty = ", or left empty" if f.default is None else ""
            return f"{noun} must be {number}, {span}{empty}."
    return ""


def chapter_code(settings: JobSettings, *, folders: bool) -> str:
    """The chapter's code as a student would write it for these settings; `folders`: a data set of one
    folder per class (else the chapter's file-name rule). What the job page shows and the run does."""
    s = settings
    seed = f"set_seed({s.seed}, reproducible=True)\n" if s.reproducible else ""
    limit = f"  # the first {s.per_class} images of each class" if s.per_class else ""
    common = f"valid_pct={s.valid_pct:g}, seed={s.seed}, item_tfms=Resize({s.image_size}), bs={s.batch_size}"
    if folders:
        dls = f"dls = ImageDataLoaders.from_folder(path, {common})"
    else:
        dls = f"dls = ImageDataLoaders.from_name_func(\n    path, get_image_files(path), label_func=is_cat, {common})"
    weights = "" if s.pretrained else ", pretrained=False"
    find = "learn.lr_find()\n" if s.lr_find else ""
    where = "untar_data(URLs.PETS)/'images'" if s.dataset == "pets" else f"Path('{s.dataset}')"
    rate = f", base_lr={s.learning_rate:g}" if s.learning_rate else ""
    return (
        f"{seed}path = {where}{limit}\n{dls}\n"
        f"learn = vision_learner(dls, {s.arch}, metrics=error_rate{weights})\n{find}learn.fine_tune({s.epochs}{rate})"
    )
