"""Materialise the training data sets as image files on disk, laid out the way the chapter expects.

Offline data come from the animal-mnist package: 10,000 28x28 uint8 silhouettes (white animal on
black) in two gzipped pickles. Read directly here, the labels are an int64 array of 0..9 in ten
contiguous blocks of 1,000 (images 0-999 are label 0, and so on). The package never names them;
its README lists the classes alphabetically, and looking at the images confirms that order:
0 Bear, 1 Bird, 2 Cat, 3 Cow, 4 Dog, 5 Elephant, 6 Giraffe, 7 Horse, 8 Sheep, 9 Zebra.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from mlworker import assets
from mlworker.assets import AssetMissing

SILHOUETTE_CLASSES = ("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra")
SILHOUETTE_SIZE = (28, 28)
# The chapter's own data set, as `len(get_image_files(untar_data(URLs.PETS)/'images'))` reports it.
PETS_N_IMAGES = 7390
# The vocab fastai builds from `is_cat`: index 0 is False (a dog), 1 is True (a cat).
NAME_FUNC_CLASSES = ["False", "True"]
DATASET_KEYS = tuple(assets.DATASET_LABELS)


@dataclass(frozen=True)
class PreparedData:
    path: Path
    key: str
    kind: str  # "name_func": label from the file name with is_cat; "folder": label from the parent folder
    classes: list[str]
    n_images: int


@lru_cache(maxsize=1)
def load_silhouettes() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [10000, 28, 28], labels int64 [10000]) from animal-mnist's package data."""
    ok, reason = assets.dataset_available("silhouettes-10")
    if not ok:
        raise AssetMissing(reason)
    folder = assets.animal_mnist_dir()
    data_file, label_file = (folder / name for name in assets.ANIMAL_MNIST_FILES)
    with gzip.open(data_file, "rb") as f:
        images = np.asarray(pickle.load(f))
    with gzip.open(label_file, "rb") as f:
        labels = np.asarray(pickle.load(f)).astype(np.int64).ravel()
    if images.shape[1:] != SILHOUETTE_SIZE or len(images) != len(labels) or images.dtype != np.uint8:
        raise AssetMissing(f"animal-mnist data in {folder} are not 28x28 uint8 images with one label each")
    if labels.min() < 0 or labels.max() >= len(SILHOUETTE_CLASSES):
        raise AssetMissing(f"animal-mnist labels in {folder} are not 0..9")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _silhouette_plan(key: str, per_class: int | None) -> tuple[str, list[str], list[tuple[str, int]]]:
    """(kind, classes, [(relative file path, index into the arrays)]) for a silhouette data set."""
    _, labels = load_silhouettes()
    if key == "silhouettes-catdog":
        wanted = {"Cat": "Cat", "Dog": "dog"}  # the chapter's rule: cats upper-case, dogs lower-case
        kind, classes = "name_func", list(NAME_FUNC_CLASSES)
    elif key == "silhouettes-10":
        wanted = {name: name for name in SILHOUETTE_CLASSES}
        kind, classes = "folder", list(SILHOUETTE_CLASSES)
    else:
        raise KeyError(key)
    entries = []
    for name, stem in wanted.items():
        idxs = np.flatnonzero(labels == SILHOUETTE_CLASSES.index(name))
        if per_class is not None:
            idxs = idxs[:per_class]
        for n, i in enumerate(idxs, start=1):
            fname = f"{stem}_{n:04d}.png"
            entries.append((fname if kind == "name_func" else f"{name}/{fname}", int(i)))
    return kind, classes, entries


def _check_key(key: str, per_class: int | None) -> None:
    if key not in DATASET_KEYS:
        raise KeyError(f"unknown data set {key!r}; known: {', '.join(DATASET_KEYS)}")
    if per_class is not None and per_class < 1:
        raise ValueError("per_class must be at least 1")


def folder_name(key: str, per_class: int | None = None) -> str:
    return key if per_class is None else f"{key}-n{per_class}"


def prepare_dataset(key: str, root: Path, *, per_class: int | None = None) -> PreparedData:
    """Write the data set's images under `root/<key>[-n<per_class>]/` (once) and describe them.

    Safe when several workers prepare the same data set at once: each writes into its own
    temporary folder and renames it into place; a loser of that race discards its copy.
    """
    _check_key(key, per_class)
    if key == "pets":
        return _prepare_pets(per_class)
    kind, classes, entries = _silhouette_plan(key, per_class)
    root = Path(root)
    final = root / folder_name(key, per_class)
    if not final.is_dir():
        _write_atomically(final, entries)
    return PreparedData(path=final, key=key, kind=kind, classes=classes, n_images=len(entries))


def folder_data(key: str, path: Path) -> PreparedData:
    """A data set already laid out as one folder per class (a student's own upload)."""
    classes = sorted(p.name for p in Path(path).iterdir() if p.is_dir())
    n_images = sum(1 for c in classes for f in (Path(path) / c).iterdir() if f.is_file())
    return PreparedData(path=Path(path), key=key, kind="folder", classes=classes, n_images=n_images)


def _write_atomically(final: Path, entries: list[tuple[str, int]]) -> None:
    images, labels = load_silhouettes()
    final.parent.mkdir(parents=True, exist_ok=True)
    # Same parent, so the rename below stays on one file system and is atomic.
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for rel, i in entries:
            dest = tmp / rel
            dest.parent.mkdir(exist_ok=True)
            Image.fromarray(np.ascontiguousarray(images[i])).save(dest)
        (tmp / "journey-dataset.json").write_text(
            json.dumps(
                {"source": "animal-mnist 0.4", "files": {rel: SILHOUETTE_CLASSES[labels[i]] for rel, i in entries}}
            )
        )
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not the race we expect: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare_pets(per_class: int | None) -> PreparedData:
    if per_class is not None:
        raise ValueError("per_class is only supported for the silhouette data sets")
    ok, reason = assets.pets_available()
    if not ok:
        raise AssetMissing(reason)
    from fastai.data.external import URLs, untar_data
    from fastai.data.transforms import get_image_files

    path = untar_data(URLs.PETS) / "images"
    return PreparedData(
        path=path, key="pets", kind="name_func", classes=list(NAME_FUNC_CLASSES), n_images=len(get_image_files(path))
    )


def _pets_images_dir() -> Path:
    return assets.fastai_data_dir() / assets.PETS_FOLDER / "images"


def dataset_summary(key: str) -> dict:
    """Size and classes of a data set, without writing its files.

    `classes` are what the model predicts (fastai's vocab; "True" means a cat for the cat/dog
    sets); `per_class` counts images by what they show.
    """
    _check_key(key, None)
    available, reason = assets.dataset_available(key)
    summary = {"key": key, "label": assets.DATASET_LABELS[key], "available": available, "reason": reason}
    if key == "pets":
        images_dir = _pets_images_dir()
        n = PETS_N_IMAGES
        if images_dir.is_dir():
            from fastai.data.transforms import get_image_files

            n = len(get_image_files(images_dir))
        return summary | {"n_images": n, "classes": list(NAME_FUNC_CLASSES), "per_class": None, "image_size": None}
    if not available:
        return summary | {"n_images": 0, "classes": [], "per_class": {}, "image_size": list(SILHOUETTE_SIZE)}
    kind, classes, entries = _silhouette_plan(key, None)
    _, labels = load_silhouettes()
    per_class: dict[str, int] = {}
    for _, i in entries:
        name = SILHOUETTE_CLASSES[labels[i]]
        per_class[name] = per_class.get(name, 0) + 1
    return summary | {
        "n_images": len(entries),
        "classes": classes,
        "per_class": per_class,
        "image_size": list(SILHOUETTE_SIZE),
    }


def sample_images(key: str, n: int = 4) -> list[tuple[str, Image.Image]]:
    """`n` example images with what they show ("cat", "dog", "Giraffe", ...), for the form.

    Deterministic: classes in turn, the first images of each.
    """
    _check_key(key, None)
    if key == "pets":
        return _pets_samples(n)
    images, labels = load_silhouettes()
    names = ["Cat", "Dog"] if key == "silhouettes-catdog" else list(SILHOUETTE_CLASSES)
    by_class = {name: np.flatnonzero(labels == SILHOUETTE_CLASSES.index(name)) for name in names}
    out = []
    for k in range(n):
        name = names[k % len(names)]
        i = by_class[name][k // len(names)]
        label = name.lower() if key == "silhouettes-catdog" else name
        out.append((label, Image.fromarray(np.ascontiguousarray(images[i]))))
    return out


def _pets_samples(n: int) -> list[tuple[str, Image.Image]]:
    from mlworker.labels import is_cat

    images_dir = _pets_images_dir()
    if not images_dir.is_dir():
        raise AssetMissing(f"Oxford-IIIT Pets is not extracted in {images_dir.parent}; prepare the data set first.")
    files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    cats = [p for p in files if is_cat(p.name)]
    dogs = [p for p in files if not is_cat(p.name)]
    out = []
    for k in range(n):
        group, label = (cats, "cat") if k % 2 == 0 else (dogs, "dog")
        with Image.open(group[k // 2]) as im:
            out.append((label, im.convert("RGB")))
    return out
