"""How a data set's images reach the model during a training run.

The chapter's DataLoaders read, decode and resize every image on every epoch, one at a time, in the
training process. Here a data set is decoded and resized once per image size into a uint8 tensor
file on the worker (`TensorCache`), and the chapter's own DataLoaders then take whole batches from
it; their batch transforms (`IntToFloatTensor`, `Normalize`, any augmentation) run on the device, as
fastai runs them. Where the cache cannot give the chapter's exact images (photos that are not
square, whose training crops `Resize` picks at random each epoch), images are still read one at a
time, by DataLoader worker processes when the run asks for them.

Imported only by the training process: it loads torch and fastai.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import fastai
import PIL
import torch
from fastai.callback.core import Callback
from fastai.data.core import TfmdDL
from fastai.data.load import _FakeLoader
from fastai.torch_core import TensorCategory, TensorImage, find_bs
from fastai.vision.augment import Resize, ResizeMethod
from fastai.vision.core import ToTensor
from fastcore.basics import chunked
from PIL import Image

__all__ = [
    "FeedDL",
    "FeedTimer",
    "TensorCache",
    "attach_cache",
    "describe",
    "exportable",
    "loader_kwargs",
    "loader_workers",
    "tensor_cache",
]

FORMAT = 1  # bump when the file's layout or the way images are decoded changes
CACHE_MB_ENV = "JOURNEY_FEED_CACHE_MB"
WORKERS_ENV = "JOURNEY_LOADER_WORKERS"
DEFAULT_CACHE_MB = 4096
MAX_AUTO_WORKERS = 8
# A cache moves to the GPU whole when it takes at most this share of the GPU's free memory; batches
# are then gathered there and nothing crosses the bus while training. Else it stays in host memory.
GPU_SHARE = 0.25


@dataclass
class TensorCache:
    """A data set's images decoded and resized once: `images[i]` is `files[i]` as the chapter's item
    transforms give it for validation (uint8, 3 x size x size)."""

    path: Path
    files: tuple[str, ...]  # relative to the data set's folder, POSIX, sorted
    images: torch.Tensor
    built: bool  # False: read from an earlier run's file
    seconds: float  # to build or to read it

    @property
    def megabytes(self) -> float:
        return self.images.numel() / 2**20

    def on(self, device: torch.device) -> torch.Tensor:
        """The images where batches are best gathered for `device`."""
        if device.type != "cuda" or self.images.is_cuda:  # one GPU per training process
            return self.images
        free, _ = torch.cuda.mem_get_info(device)
        if self.images.numel() > GPU_SHARE * free:
            return self.images
        self.images = self.images.to(device)
        return self.images


def _relative(folder: Path, files: Sequence[Path]) -> list[str]:
    return sorted(Path(f).relative_to(folder).as_posix() for f in files)


def fingerprint(folder: Path, rel_files: Sequence[str], item_tfms: str) -> str:
    """Names and bytes of every image, and the transforms that size them: any change gives another."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"journey-feed {FORMAT}\n{item_tfms}\n".encode())
    for rel in rel_files:
        data = (folder / rel).read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _square(path: Path) -> bool:
    with Image.open(path) as im:  # reads the header only
        return im.width == im.height


def _cacheable(item_tfms, folder: Path, rel_files: Sequence[str]) -> str:
    """Why these images cannot be cached as the chapter reads them; "" when they can."""
    kinds = [type(t) for t in item_tfms.fs]
    if kinds != [Resize, ToTensor]:
        return f"its item transforms are {item_tfms}, not Resize alone"
    if item_tfms.fs[0].method == ResizeMethod.Squish:
        return ""  # squishing does not depend on the split
    if not all(_square(folder / rel) for rel in rel_files):
        # Resize crops a training image at a random place each epoch: no single copy is right.
        return "not all its images are square"
    return ""


def _decode(folder: Path, rel_files: Sequence[str], x_tfms, item_tfms) -> torch.Tensor:
    first = item_tfms(x_tfms(folder / rel_files[0]))
    out = torch.empty((len(rel_files), *first.shape), dtype=torch.uint8)
    out[0] = first
    for i, rel in enumerate(rel_files[1:], start=1):
        out[i] = item_tfms(x_tfms(folder / rel))
    return out


def _cache_budget() -> int:
    return int(float(os.environ.get(CACHE_MB_ENV, DEFAULT_CACHE_MB)) * 2**20)


def _prune(root: Path, keep: Path, budget: int) -> None:
    """Least recently used cache files go first until the rest fit the budget (`keep` stays)."""
    files = []
    for p in root.glob("*/*.pt"):
        try:
            st = p.stat()
        except FileNotFoundError:  # another worker pruned it
            continue
        files.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in files)
    for _, size, p in sorted(files):
        if total <= budget:
            break
        if p != keep:
            p.unlink(missing_ok=True)
            total -= size


def tensor_cache(
    folder: Path, files: Sequence[Path], *, x_tfms, item_tfms, root: Path, name: str | None = None
) -> TensorCache | str:
    """The data set's images as a uint8 tensor, built on first use and read back after.

    `files` are the images under `folder`; `x_tfms` opens one (fastai's `PILImage.create`) and
    `item_tfms` is the chapter's `Resize(size)` then `ToTensor`, applied as for validation. One file
    per (images' names and bytes, transforms) under `root/<name>/`: a changed data set gets a new
    file and its stale one for the same size is removed. Returns why not, as a string, when the
    cache could not give the chapter's images.
    """
    folder = Path(folder)
    rel_files = _relative(folder, files)
    if not rel_files:
        return "it has no images"
    if reason := _cacheable(item_tfms, folder, rel_files):
        return reason
    t0 = time.perf_counter()
    # The transforms with their arguments, and the code that runs them: an upgrade may resize otherwise.
    digest = fingerprint(folder, rel_files, f"{item_tfms!r} fastai {fastai.__version__} Pillow {PIL.__version__}")
    size = item_tfms.fs[0].size
    stem = f"{size[0]}x{size[1]}"
    directory = Path(root) / (name or folder.name)
    path = directory / f"{stem}-{digest}.pt"
    cached = _load(path, rel_files)
    if cached is not None:
        os.utime(path)  # recently used: pruned last
        return TensorCache(path, tuple(rel_files), cached, built=False, seconds=time.perf_counter() - t0)
    images = _decode(folder, rel_files, x_tfms, item_tfms)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        torch.save({"format": FORMAT, "files": list(rel_files), "images": images}, tmp)
        os.replace(tmp, path)  # atomic: a reader sees the old file, the new one, or none
    finally:
        tmp.unlink(missing_ok=True)
    for stale in directory.glob(f"{stem}-*.pt"):
        if stale != path:
            stale.unlink(missing_ok=True)
    _prune(Path(root), path, _cache_budget())
    return TensorCache(path, tuple(rel_files), images, built=True, seconds=time.perf_counter() - t0)


def _load(path: Path, rel_files: list[str]) -> torch.Tensor | None:
    try:
        saved = torch.load(path, mmap=True, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged file is rebuilt, as a missing one is
        path.unlink(missing_ok=True)
        return None
    if saved.get("format") != FORMAT or saved.get("files") != rel_files:
        return None
    return saved["images"]


def loader_workers(device: torch.device, requested: int | None = None) -> int:
    """DataLoader worker processes for images read one at a time.

    `requested`, else `JOURNEY_LOADER_WORKERS`, else on a GPU one per CPU core but one (at most 8),
    and none on a CPU, whose cores the training itself keeps busy. Always none in a daemonic process
    (a Celery prefork child), which may not start children.
    """
    if multiprocessing.current_process().daemon:
        return 0
    if requested is None and (env := os.environ.get(WORKERS_ENV, "").strip()):
        requested = int(env)
    if requested is not None:
        return max(0, requested)
    if device.type != "cuda":
        return 0
    return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0)) - 1))


def loader_kwargs(device: torch.device, workers: int) -> dict:
    """What to pass the chapter's `ImageDataLoaders.from_*` besides its own arguments."""
    return dict(dl_type=FeedDL, num_workers=workers, pin_memory=device.type == "cuda", device=device)


def attach_cache(dls, folder: Path, *, root: Path, name: str | None = None) -> TensorCache | str:
    """Give the training and validation loaders of `dls` the data set's tensor cache.

    They then gather whole batches from it and need no worker processes. Returns the cache, or
    why the images are read one at a time (see `tensor_cache`).
    """
    valid = dls.valid
    x_tfms = valid.dataset.tls[0].tfms
    item_tfms = valid.after_item
    old_split = item_tfms.split_idx
    item_tfms.split_idx = 1  # the validation view: Resize crops at the centre
    try:
        items = [*dls.train.dataset.items, *valid.dataset.items]
        cache = tensor_cache(folder, items, x_tfms=x_tfms, item_tfms=item_tfms, root=root, name=name)
    finally:
        item_tfms.split_idx = old_split
    if isinstance(cache, TensorCache):
        for dl in (dls.train, valid):
            dl.use_cache(cache, folder)
    return cache


class _ForkLoader(_FakeLoader):
    """fastai's loader, its workers started by fork, said outright (Python 3.14 makes forkserver the
    default). fastai's transforms do not pickle with the standard pickler that spawn and forkserver
    use to hand a worker its loader; a forked worker inherits it instead. A fork after CUDA is up is
    safe as long as the worker never touches CUDA, and PyTorch refuses if it tries: the workers only
    open, decode and resize images; moving batches to the device and the batch transforms stay in
    the training process (fastai's DataLoader.__iter__)."""

    @property
    def multiprocessing_context(self):
        return multiprocessing.get_context("fork") if self.num_workers > 0 else None


class FeedDL(TfmdDL):
    """fastai's TfmdDL that gathers whole batches from a TensorCache when it has one, and otherwise
    reads images one at a time, in forked worker processes when it has workers."""

    def __init__(self, dataset=None, *args, **kwargs):
        super().__init__(dataset, *args, **kwargs)
        self.fake_l.__class__ = _ForkLoader
        self.cache: TensorCache | None = None
        self._table = None

    def use_cache(self, cache: TensorCache, folder: Path) -> None:
        """Gather batches from `cache`, whose rows hold this loader's items (under `folder`)."""
        ds = self.dataset
        if len(ds.tls) != 2:
            raise ValueError("the tensor cache serves (image, label) data sets")
        index = {rel: i for i, rel in enumerate(cache.files)}
        rows = torch.tensor([index[Path(p).relative_to(folder).as_posix()] for p in ds.items], dtype=torch.long)
        targets = torch.stack([torch.as_tensor(ds.tls[1][i]) for i in range(len(ds))]) if len(ds) else rows
        self.cache, self._table = cache, (rows, targets.long())
        self.fake_l.num_workers = 0
        images = cache.on(self.device) if self.device is not None else cache.images
        # Pinning is for batches that cross to the GPU; ones gathered on it are there already.
        self.pin_memory = self.fake_l.pin_memory = images.device.type == "cpu" and self.pin_memory

    def create_batches(self, samps):
        if self._table is None:
            yield from super().create_batches(samps)
            return
        rows, targets = self._table
        images = self.cache.on(self.device) if self.device is not None else self.cache.images
        for chunk in chunked(samps, self.bs, self.drop_last):
            i = torch.as_tensor(chunk, dtype=torch.long)
            yield TensorImage(images[rows[i].to(images.device)]), TensorCategory(targets[i])

    def new(self, dataset=None, cls=None, **kwargs):
        res = super().new(dataset, cls, **kwargs)
        # The same items in another order or batching (fastai's interpretation): the same cache.
        if self.cache is not None and isinstance(res, FeedDL) and res.dataset is self.dataset:
            res.cache, res._table = self.cache, self._table
            res.fake_l.num_workers = 0
            res.pin_memory = res.fake_l.pin_memory = self.pin_memory
        return res


class FeedTimer(Callback):
    """Splits the training batches' time into waiting for data and computing, per fit.

    Waiting is the time between one batch's end and the next one's start: the DataLoader's work
    (gathering or reading images, moving them to the device, its batch transforms) as the training
    loop sees it. Computing is the rest, forward to optimiser step and the callbacks' work (fastai's
    Recorder reads each loss back from the device, so the step's device time falls here). The
    learning-rate finder's mock fits are left out.
    """

    order = 1000  # after every other callback: after the Recorder's read-back of the loss

    def __init__(self):
        super().__init__()
        self.fits: list[dict] = []

    def _ignored(self) -> bool:
        return hasattr(self.learn, "lr_finder")

    def before_fit(self):
        if not self._ignored():
            self.fits.append({"images": 0, "batches": 0, "data_seconds": 0.0, "compute_seconds": 0.0})

    def before_train(self):
        self.mark = time.perf_counter()  # the loader's iterator (and any workers) start after this

    def before_batch(self):
        if self.training and not self._ignored():
            now = time.perf_counter()
            self.fits[-1]["data_seconds"] += now - self.mark
            self.mark = now

    def after_batch(self):
        if self.training and not self._ignored():
            now = time.perf_counter()
            fit = self.fits[-1]
            fit["compute_seconds"] += now - self.mark
            fit["images"] += find_bs(self.learn.yb)
            fit["batches"] += 1
            self.mark = now

    def summary(self) -> dict:
        """The fits' sums, and the last fit's (fine_tune's unfrozen epochs) alone under "last"."""
        total = {k: sum(f[k] for f in self.fits) for k in ("images", "batches", "data_seconds", "compute_seconds")}
        return {**_rates(total), "last": _rates(dict(self.fits[-1])) if self.fits else None}


def _rates(d: dict) -> dict:
    seconds = d["data_seconds"] + d["compute_seconds"]
    return {
        **d,
        "images_per_second": d["images"] / seconds if seconds else 0.0,
        "data_share": d["data_seconds"] / seconds if seconds else 0.0,
    }


def timing_line(summary: dict) -> str:
    return (
        f"Data feed: {summary['images']} training images in {summary['batches']} batches, "
        f"{summary['data_seconds']:.1f} s waiting for data and {summary['compute_seconds']:.1f} s computing "
        f"({summary['data_share']:.0%} waiting, {summary['images_per_second']:.0f} images/s)."
    )


def exportable(dls):
    """`dls` as fastai's own loaders without workers, for `learn.export()`: the exported learner is
    then what it was before this module (it needs no cache) and predicts in a daemonic process."""
    from fastai.data.core import DataLoaders

    loaders = [dl.new(cls=TfmdDL, num_workers=0, pin_memory=False) for dl in dls.loaders]
    return DataLoaders(*loaders, path=dls.path, device=dls.device)


def describe(cache: TensorCache | str, dls) -> str:
    """One line for the job's log: how this run's images reach the model."""
    if isinstance(cache, TensorCache):
        how = "built now" if cache.built else "read back"
        where = cache.images.device
        return (
            f"Data feed: a tensor cache of {len(cache.files)} images ({cache.megabytes:.1f} MB, {how} in "
            f"{cache.seconds:.1f} s); batches are gathered on {where}."
        )
    n = dls.train.fake_l.num_workers
    workers = f"{n} DataLoader worker process{'es' if n != 1 else ''}" if n else "the training process"
    return f"Data feed: images are read one at a time by {workers} (no tensor cache: {cache})."
