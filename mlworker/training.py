"""The chapter's experiment, parameterised: DataLoaders, `vision_learner`, `fine_tune`, then the
confusion matrix, the top losses and an exported model. Reports through a `Reporter` and knows
nothing of where the reports go.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from mlworker import assets, datasets
from mlworker.assets import AssetMissing
from mlworker.jobsettings import JobSettings, settings_problem
from mlworker.splits import split_sizes

__all__ = [
    "AssetMissing",
    "Cancelled",
    "Reporter",
    "TrainConfig",
    "TrainResult",
    "TrainingError",
    "run_training",
    "split_sizes",
    "validate_config",
]

GPU_OUT_OF_MEMORY = "The GPU ran out of memory. Lower the batch size or the image size and try again."
CPU_OUT_OF_MEMORY = "The worker ran out of memory. Lower the batch size or the image size and try again."
DEFAULT_BASE_LR = 2e-3  # fastai's fine_tune default
TOP_LOSSES = 9
VALIDATION_SAMPLE = 12  # validation images kept besides the top losses, right and wrong, to ask the model about
THUMBNAIL = 128
FEED_CACHE_FOLDER = "feed-cache"  # under the data root: the data sets' tensor caches (mlworker.feed)


class TrainingError(Exception):
    """A failure the student can act on; the message says how."""


class Cancelled(Exception):
    """The reporter asked to stop; training stopped within a batch."""


@dataclass(frozen=True)
class TrainConfig(JobSettings):
    """A job's settings and what one run needs besides them."""

    data_path: str | None = None  # a student's own data set: one folder per class, already checked
    lr_find_iterations: int = 100  # lr_find's mock batches (fastai's num_it)
    loader_workers: int | None = None  # DataLoader workers for images read one at a time (None: mlworker.feed decides)
    tensor_cache: bool = True  # False: every image is read, decoded and resized each epoch, as the chapter's code does


class Reporter(Protocol):
    """Where a run's progress goes (the Django side writes database rows)."""

    def progress(
        self,
        *,
        phase: str,
        epoch: int,
        total_epochs: int,
        batch: int,
        n_batches: int,
        fraction: float,
        train_loss: float | None,
    ) -> None:
        """Called after every training batch; the reporter throttles its own writes.

        phase is "head" (fine_tune's frozen epoch) or "whole"; epoch counts from 1 across both
        fits (the head epoch is 1, total_epochs is epochs + 1); batch counts from 1 in the epoch;
        fraction is the share of all training batches of both fits done, reaching 1.0.
        """

    def epoch_end(
        self,
        *,
        phase: str,
        epoch: int,
        train_loss: float,
        valid_loss: float,
        error_rate: float,
        accuracy: float,
        seconds: float,
    ) -> None:
        """Called once per epoch, numbered as in progress(), after fastai's Recorder."""

    def should_cancel(self) -> bool:
        """Called after every batch, training and validation."""

    def log(self, message: str) -> None:
        """Milestones in plain words; those of the learning-rate finder start with "lr_find"."""


@dataclass
class TrainResult:
    error_rate: float
    accuracy: float
    device: str
    seconds: float  # the whole run: data, model, training, interpretation, export
    train_seconds: float  # fine_tune alone
    classes: list[str]
    confusion: list[list[int]]  # rows: actual class, columns: predicted, in `classes` order
    # image_path (relative to out_dir), predicted, actual, loss, probability: the top losses, highest
    # first, then a sample of the other validation images marked "sample": True (see validation_sample)
    top_losses: list[dict]
    lr_find: dict | None  # {"suggestion": float, "points": [[lr, loss], ...]}
    export_path: Path
    n_train: int
    n_valid: int
    base_lr: float
    epochs: list[dict] = field(default_factory=list)  # one per epoch_end call
    # Training batches' time waiting for data and computing (mlworker.feed.FeedTimer.summary)
    feed: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready."""
        d = asdict(self)
        d["export_path"] = str(self.export_path)
        return d


def validate_config(config: TrainConfig) -> None:
    """Raise TrainingError for settings no run can succeed with."""

    def bad(message: str):
        raise TrainingError(message)

    if config.data_path is not None:
        if config.per_class is not None:
            bad("Limiting images per class is only possible for the silhouette data sets.")
    elif config.dataset not in assets.DATASET_LABELS:
        bad(f"Unknown data set {config.dataset!r}. Choose one of: {', '.join(assets.DATASET_LABELS)}.")
    if config.arch not in assets.ARCH_LABELS:
        bad(f"Unknown architecture {config.arch!r}. Choose one of: {', '.join(assets.ARCH_LABELS)}.")
    if problem := settings_problem(config):
        bad(problem)
    if config.per_class is not None and config.dataset == "pets":
        bad("Limiting images per class is only possible for the silhouette data sets.")


def _memory_error(exc: BaseException) -> str | None:
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return GPU_OUT_OF_MEMORY
    text = str(exc).lower()
    if isinstance(exc, RuntimeError):
        if "cuda out of memory" in text or ("out of memory" in text and "cuda" in text):
            return GPU_OUT_OF_MEMORY
        if "out of memory" in text or "can't allocate memory" in text:
            return CPU_OUT_OF_MEMORY
    if isinstance(exc, MemoryError):
        return CPU_OUT_OF_MEMORY
    return None


def _device_label(device) -> str:
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def run_training(config: TrainConfig, *, data_root: Path, out_dir: Path, reporter: Reporter) -> TrainResult:
    """Run one job: raises TrainingError (student-actionable), Cancelled or AssetMissing."""
    validate_config(config)
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    reporter.log(f"Preparing the data set {config.dataset}.")
    if config.data_path is not None:
        data = datasets.folder_data(config.dataset, Path(config.data_path))
    else:
        data = datasets.prepare_dataset(config.dataset, Path(data_root), per_class=config.per_class)

    from mlworker.archs import get_arch

    arch = get_arch(config.arch, config.pretrained)  # AssetMissing before anything could download

    import torch

    learn = None
    try:
        learn, result = _train(config, data, arch, out_dir, reporter, started, data_root)
        return result
    except (Cancelled, TrainingError, AssetMissing):
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to a student-facing message when we know one
        message = _memory_error(exc)
        if message is None:
            raise
        raise TrainingError(message) from exc
    finally:
        # The job's process may live on (a solo or threaded pool); give back what we can.
        del learn
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _dataloaders(data: datasets.PreparedData, config: TrainConfig, device, data_root: Path):
    from fastai.vision.all import ImageDataLoaders, Resize, get_image_files

    from mlworker import feed
    from mlworker.labels import is_cat

    # The chapter's DataLoaders; mlworker.feed changes how the images reach them, not what they are.
    common = dict(
        valid_pct=config.valid_pct,
        seed=config.seed,
        item_tfms=Resize(config.image_size),
        bs=config.batch_size,
        **feed.loader_kwargs(device, feed.loader_workers(device, config.loader_workers)),
    )
    if data.kind == "name_func":
        dls = ImageDataLoaders.from_name_func(data.path, get_image_files(data.path), label_func=is_cat, **common)
    else:
        dls = ImageDataLoaders.from_folder(data.path, **common)
    root = Path(data_root) / FEED_CACHE_FOLDER
    # One cache folder per data set: a built-in one by its prepared folder's name, a student's by its
    # key (its images sit in each job's own scratch folder, whose name says nothing of them).
    name = data.path.name if config.data_path is None else data.key
    cache = feed.attach_cache(dls, data.path, root=root, name=name) if config.tensor_cache else "the run asked for none"
    return dls, feed.describe(cache, dls)


def _train(config, data, arch, out_dir, reporter, started, data_root):
    from fastai.vision.all import (
        ClassificationInterpretation,
        ProgressCallback,
        accuracy,
        default_device,
        error_rate,
        noop,
        set_seed,
        vision_learner,
    )

    from mlworker import feed

    device = default_device()
    # cuDNN's deterministic mode (and no autotuner) only when the student asks for it: it slows a GPU.
    set_seed(config.seed, reproducible=config.reproducible)
    if device.type == "cuda" and not config.reproducible:
        import torch

        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    device_label = _device_label(device)
    reporter.log(f"Device: {device_label}.")

    dls, feed_line = _dataloaders(data, config, device, data_root)
    n_train, n_valid = len(dls.train_ds), len(dls.valid_ds)
    if n_valid == 0:
        raise TrainingError("No images were left for validation. Raise the validation share or use more images.")
    if len(dls.train) == 0:
        raise TrainingError(
            f"Only {n_train} training images: fewer than one batch of {config.batch_size}. "
            "Lower the batch size or use more images."
        )
    reporter.log(f"Data: {n_train} training and {n_valid} validation images, classes {list(map(str, dls.vocab))}.")
    reporter.log(feed_line)

    # path=out_dir: lr_find and exports write there, never into the shared data set folder.
    learn = vision_learner(dls, arch, metrics=[error_rate, accuracy], pretrained=config.pretrained, path=out_dir)
    learn.remove_cb(ProgressCallback)
    learn.logger = noop  # the Recorder would print each epoch's row
    # channels_last model and inputs: with fp16 mixed precision on a GPU; on a CPU in fp32, where
    # oneDNN's convolutions run faster so (bench/feed.py measures it).
    learn.to_channelslast(use_amp=device.type == "cuda")
    reporter.log(f"Model: channels_last, {'fp16 mixed precision' if device.type == 'cuda' else 'fp32'}.")

    lr_result = None
    base_lr = config.learning_rate
    if config.lr_find:
        lr_result = _lr_find(learn, reporter, iterations=config.lr_find_iterations)
        if base_lr is None and lr_result is not None:
            base_lr = lr_result["suggestion"]
    if base_lr is None:
        base_lr = DEFAULT_BASE_LR

    cb = _reporter_callback_class()(reporter, epochs=config.epochs, n_batches=len(dls.train))
    timer = feed.FeedTimer()
    learn.add_cbs([cb, timer])
    reporter.log(f"Training: fine_tune({config.epochs}) with base_lr={base_lr:.2e}.")
    t0 = time.perf_counter()
    learn.fine_tune(config.epochs, base_lr=base_lr)
    train_seconds = time.perf_counter() - t0
    learn.remove_cbs([cb, timer])  # also keeps the reporter out of the exported pickle
    feed_timing = timer.summary()
    reporter.log(feed.timing_line(feed_timing))
    if cb.cancel_requested:
        raise Cancelled(f"Cancelled after {cb.batches_done} training batches.")

    reporter.log("Interpreting the results: confusion matrix and top losses.")
    # One pass over the validation set gives what ClassificationInterpretation.from_learner, its
    # confusion_matrix and the top losses' predictions would each have run a pass for.
    valid_dl = dls.valid.new(shuffle=False, drop_last=False)
    preds, targs, losses = learn.get_preds(dl=valid_dl, with_loss=True)
    interp = ClassificationInterpretation(learn, valid_dl, losses)
    classes = [str(v) for v in dls.vocab]
    confusion = _confusion(preds.argmax(dim=1), targs, len(classes))
    top = _top_losses(interp, preds, targs, classes, out_dir)

    export_path = out_dir / "model.pkl"
    learn.dls = feed.exportable(learn.dls)  # fastai's own loaders, no workers: load_learner anywhere
    learn.export(export_path)
    _remove_empty(out_dir / "models")
    reporter.log(f"Exported the model to {export_path.name}.")

    last = cb.rows[-1]
    result = TrainResult(
        error_rate=last["error_rate"],
        accuracy=last["accuracy"],
        device=device_label,
        seconds=time.perf_counter() - started,
        train_seconds=train_seconds,
        classes=classes,
        confusion=[[int(v) for v in row] for row in confusion],
        top_losses=top,
        lr_find=lr_result,
        export_path=export_path,
        n_train=n_train,
        n_valid=n_valid,
        base_lr=float(base_lr),
        epochs=list(cb.rows),
        feed=feed_timing,
    )
    return learn, result


def _lr_find(learn, reporter, *, iterations: int) -> dict | None:
    reporter.log("lr_find: a short mock training with a growing learning rate.")
    try:
        suggestion = learn.lr_find(num_it=iterations, show_plot=False)
    except Exception as exc:  # noqa: BLE001 - the job can go on with the default rate
        if _memory_error(exc):
            raise
        reporter.log(f"lr_find: no suggestion ({exc}); using the default learning rate.")
        return None
    points = [
        [float(lr), float(loss)]
        for lr, loss in zip(learn.recorder.lrs, learn.recorder.losses)
        if math.isfinite(float(loss))
    ]
    valley = float(suggestion.valley)
    if not (math.isfinite(valley) and valley > 0):
        reporter.log("lr_find: no usable suggestion; using the default learning rate.")
        return None
    reporter.log(f"lr_find: suggested learning rate {valley:.2e} (valley).")
    return {"suggestion": valley, "points": points}


def _confusion(predicted, actual, n: int) -> list[list[int]]:
    """Rows: actual class, columns: predicted, as fastai's confusion_matrix counts them."""
    import torch

    cells = actual.long().cpu() * n + predicted.long().cpu()
    return torch.bincount(cells, minlength=n * n).view(n, n).tolist()


def _top_losses(interp, preds, targs, classes: list[str], out_dir: Path) -> list[dict]:
    from PIL import Image

    k = min(TOP_LOSSES, len(interp.losses))
    _, top_idxs = interp.losses.topk(k)
    predicted = preds.argmax(dim=1).tolist()
    actual = [int(t) for t in targs]
    correct = [p == a for p, a in zip(predicted, actual, strict=True)]
    top = top_idxs.tolist()
    chosen = [(i, f"{rank:02d}", False) for rank, i in enumerate(top, start=1)]
    chosen += [(i, f"sample_{n:02d}", True) for n, i in enumerate(validation_sample(correct, set(top)), start=1)]
    folder = out_dir / "top_losses"
    folder.mkdir(exist_ok=True)
    rows = []
    for i, prefix, sampled in chosen:
        item = interp.dl.items[i]
        name = f"{prefix}_{Path(item).stem}.png"
        with Image.open(item) as im:
            _thumbnail(im).save(folder / name)
        row = {
            "image_path": f"top_losses/{name}",
            "predicted": classes[predicted[i]],
            "actual": classes[actual[i]],
            "loss": float(interp.losses[i]),
            "probability": float(preds[i][predicted[i]]),
        }
        rows.append({**row, "sample": True} if sampled else row)
    return rows


def validation_sample(correct: list[bool], skip: set[int], k: int | None = None) -> list[int]:
    """Indexes of up to k validation images, not among `skip` (the top losses), spread evenly over the
    validation set, half of them ones the model got right and half wrong where there are enough of
    each: the page's "pick one of its validation images" then shows what the model does well too."""
    k = VALIDATION_SAMPLE if k is None else k
    right = [i for i, ok in enumerate(correct) if ok and i not in skip]
    wrong = [i for i, ok in enumerate(correct) if not ok and i not in skip]
    n_wrong = min(len(wrong), k // 2)
    n_right = min(len(right), k - n_wrong)
    n_wrong = min(len(wrong), k - n_right)  # few right ones: more wrong ones fill the sample

    def spread(indexes, n):
        return [indexes[j * len(indexes) // n] for j in range(n)] if n else []

    return sorted(spread(right, n_right) + spread(wrong, n_wrong))


def _thumbnail(im):
    from PIL import Image

    im = im.convert("RGB")
    longest = max(im.size)
    if longest < THUMBNAIL:  # small silhouettes: enlarge with hard pixel edges
        scale = THUMBNAIL // longest or 1
        return im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    im.thumbnail((THUMBNAIL * 2, THUMBNAIL * 2))
    return im


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # lr_find's scratch folder, empty once it has cleaned up
    except OSError:
        pass


def _make_reporter_callback():
    from fastai.callback.core import Callback, CancelFitException
    from fastai.learner import Recorder

    class ReporterCallback(Callback):
        """Sends progress and per-epoch metrics to a Reporter and stops the fit when asked.

        `fine_tune(n)` is two fits: the frozen-body "head" epoch, then n "whole" epochs; progress
        counts across both. lr_find's mock fits are not the job's progress and are ignored.
        """

        order = Recorder.order + 1  # after the Recorder has updated smooth_loss and final_record

        def __init__(self, reporter: Reporter, *, epochs: int, n_batches: int):
            super().__init__()
            self.reporter = reporter
            self.total_epochs = epochs + 1
            self.n_train_batches = n_batches
            self.batches_done = 0
            self.epochs_done = 0
            self.fits_started = 0
            self.current_phase = "head"
            self.cancel_requested = False
            self.rows: list[dict] = []

        def _ignored(self) -> bool:
            return hasattr(self.learn, "lr_finder")

        def before_fit(self):
            if self._ignored():
                return
            if self.cancel_requested:  # fine_tune starts its second fit after a cancelled first
                raise CancelFitException()
            self.fits_started += 1
            self.current_phase = "head" if self.fits_started == 1 else "whole"

        def before_epoch(self):
            self.epoch_started = time.perf_counter()

        def after_batch(self):
            if self._ignored():
                return
            if self.training:
                self.batches_done += 1
                fraction = min(1.0, self.batches_done / (self.total_epochs * self.n_train_batches))
                loss = getattr(self.learn, "smooth_loss", None)
                self.reporter.progress(
                    phase=self.current_phase,
                    epoch=self.epochs_done + 1,
                    total_epochs=self.total_epochs,
                    batch=self.iter + 1,
                    n_batches=self.n_iter,
                    fraction=fraction,
                    train_loss=_float_or_none(loss),
                )
            if self.reporter.should_cancel():
                self.cancel_requested = True
                raise CancelFitException()

        def after_epoch(self):
            if self._ignored():
                return
            self.epochs_done += 1
            names = list(self.recorder.metric_names[1:])
            values = dict(zip([n for n in names if n != "time"], self.learn.final_record))
            row = dict(
                phase=self.current_phase,
                epoch=self.epochs_done,
                train_loss=float(values["train_loss"]),
                valid_loss=float(values["valid_loss"]),
                error_rate=float(values["error_rate"]),
                accuracy=float(values["accuracy"]),
                seconds=time.perf_counter() - self.epoch_started,
            )
            self.rows.append(row)
            self.reporter.epoch_end(**row)

    return ReporterCallback


def _float_or_none(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@lru_cache(maxsize=1)
def _reporter_callback_class():
    cls = _make_reporter_callback()
    cls.__module__, cls.__qualname__ = __name__, "ReporterCallback"
    globals()["ReporterCallback"] = cls
    return cls


def __getattr__(name):
    # ReporterCallback subclasses fastai's Callback, so it is built on first use: importing this
    # module (for TrainConfig, in a web process or a worker's parent) then loads no fastai/torch.
    if name == "ReporterCallback":
        return _reporter_callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
