"""The data feed (mlworker.feed): a data set decoded once per image size into a tensor cache, the
chapter's DataLoaders gathering batches from it, and workers where images are still read one by one."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from fastai.data.core import TfmdDL
from fastai.vision.all import Flip, ImageDataLoaders, Resize, TensorImage, Transform, get_image_files, set_seed
from PIL import Image

from mlworker import feed
from mlworker.labels import is_cat

CPU = torch.device("cpu")


def write_images(folder: Path, n_per_class: int = 12, shape=(28, 28), seed: int = 0) -> Path:
    """Cats upper-case and dogs lower-case, as the chapter names them: random grey noise, each different."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for stem in ("Cat", "dog"):
        for n in range(n_per_class):
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{stem}_{n:03d}.png")
    return folder


def chapter_dls(folder: Path, size: int = 32, *, bs: int = 4, seed: int = 42, **kwargs):
    """The chapter's ImageDataLoaders, built as mlworker.training builds them."""
    set_seed(seed)
    return ImageDataLoaders.from_name_func(
        folder, get_image_files(folder), label_func=is_cat, valid_pct=0.25, seed=seed, item_tfms=Resize(size), bs=bs,
        **{**feed.loader_kwargs(CPU, 0), **kwargs},
    )  # fmt: skip


def cached(folder: Path, root: Path, size: int = 32, **kwargs):
    dls = chapter_dls(folder, size, **kwargs)
    return dls, feed.attach_cache(dls, folder, root=root)


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "catdog")


def test_it_builds_the_cache_once_per_size_and_reads_it_back_after(images, tmp_path):
    root = tmp_path / "cache"
    _, first = cached(images, root, 32)
    _, again = cached(images, root, 32)
    _, other = cached(images, root, 48)
    assert first.built and not again.built and other.built
    assert again.path == first.path and first.path.is_file() and other.path.is_file()
    assert first.path.stat().st_ino == again.path.stat().st_ino  # read, not written again
    assert tuple(first.images.shape) == (24, 3, 32, 32) and first.images.dtype == torch.uint8
    assert torch.equal(first.images, again.images)
    assert tuple(other.images.shape) == (24, 3, 48, 48)


def test_a_changed_data_set_gets_a_new_cache_and_its_stale_one_goes(images, tmp_path):
    root = tmp_path / "cache"
    _, before = cached(images, root)
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(images / "Cat_000.png")  # same name, new pixels
    _, edited = cached(images, root)
    assert edited.built and edited.path != before.path and not before.path.exists()
    (images / "dog_001.png").rename(images / "Cat_999.png")  # same bytes, another name (and label)
    _, renamed = cached(images, root)
    assert renamed.built and renamed.path != edited.path
    assert renamed.files[-1] == "dog_011.png" and "Cat_999.png" in renamed.files
    assert [p.name for p in (root / images.name).iterdir()] == [renamed.path.name]


def test_the_cached_loaders_give_the_chapters_labels_split_and_images(images, tmp_path):
    plain = chapter_dls(images, 40, dl_type=TfmdDL)  # the per-image loaders of the chapter's code
    dls, cache = cached(images, tmp_path / "cache", 40)
    assert cache.built and dls.train._table is not None
    assert list(dls.vocab) == list(plain.vocab) == [False, True]
    assert list(dls.train_ds.items) == list(plain.train_ds.items)
    assert list(dls.valid_ds.items) == list(plain.valid_ds.items)
    for ours, theirs, shuffled in ((dls.train, plain.train, True), (dls.valid, plain.valid, False)):
        got, want = list(ours), list(theirs)
        assert len(got) == len(want) == len(theirs)
        for (x, y), (xp, yp) in zip(got, want, strict=True):
            assert type(x) is type(xp) and type(y) is type(yp)
            assert torch.equal(y, yp)  # same labels in the same (shuffled) order
            assert torch.equal(x, xp)  # the same pixels, after the same batch transforms
        assert ours.shuffle is shuffled


def test_fastais_interpretation_loader_keeps_the_cache(images, tmp_path):
    dls, _ = cached(images, tmp_path / "cache")
    dl = dls.valid.new(shuffle=False, drop_last=False)  # what ClassificationInterpretation.from_learner does
    assert dl._table is dls.valid._table
    assert [torch.equal(a, b) for (a, _), (b, _) in zip(dl, dls.valid, strict=True)] == [True] * len(dls.valid)


class Spy(Transform):
    """A batch transform that notes each input it is given."""

    order = 100

    def __init__(self):
        super().__init__()
        self.seen = []

    def encodes(self, x: TensorImage):
        self.seen.append((tuple(x.shape), x.dtype, x.device.type))
        return x


def test_batch_transforms_and_augmentations_run_on_whole_batches_from_the_cache(images, tmp_path):
    spy = Spy()
    dls, cache = cached(images, tmp_path / "cache", 32, batch_tfms=[Flip(p=1.0), spy])
    untouched = cache.images.clone()
    spy.seen.clear()  # fastai's own setup pass
    x, _ = dls.train.one_batch()
    # Called once per batch, with the whole batch as floats: IntToFloatTensor, then the flip, ran on it.
    assert spy.seen == [((4, 3, 32, 32), torch.float32, "cpu")]
    # Each image of the batch is a cached image mirrored left to right.
    cached_float = cache.images.float() / 255
    for img in x:
        mirrored = img.flip(-1)
        assert any(torch.allclose(mirrored, c, atol=1e-4) for c in cached_float), "not a mirrored cached image"
    assert torch.equal(cache.images, untouched)  # the cache holds the images before augmentation
    vx, _ = dls.valid.one_batch()  # fastai's Flip is for training only
    assert any(torch.allclose(vx[0], c, atol=1e-6) for c in cached_float)


def test_images_that_are_not_square_are_read_one_at_a_time(tmp_path):
    folder = write_images(tmp_path / "photos", shape=(30, 40))
    dls, reason = cached(folder, tmp_path / "cache")
    assert reason == "not all its images are square"
    assert dls.train._table is None and not (tmp_path / "cache").exists()
    x, y = dls.train.one_batch()
    assert tuple(x.shape) == (4, 3, 32, 32)
    assert "read one at a time by the training process" in feed.describe(reason, dls)


def test_least_recently_used_caches_go_first_past_the_budget(images, tmp_path, monkeypatch):
    root = tmp_path / "cache"
    other = write_images(tmp_path / "other", seed=1)
    _, a = cached(images, root, 32)  # 24 images x 3 KiB
    _, b = cached(other, root, 32)
    monkeypatch.setenv(feed.CACHE_MB_ENV, str(100 / 1024))  # 100 KiB: room for one 72 KiB cache file
    _, c = cached(images, root, 40)
    assert c.path.is_file() and not a.path.exists() and not b.path.exists()


def test_the_loaders_for_an_export_are_fastais_own_without_workers(images, tmp_path):
    dls, _ = cached(images, tmp_path / "cache", num_workers=2)
    out = feed.exportable(dls)
    assert [type(dl) for dl in out.loaders] == [TfmdDL, TfmdDL]
    assert all(dl.fake_l.num_workers == 0 for dl in out.loaders)
    assert list(out.vocab) == list(dls.vocab) and list(out.train.after_item.fs) == list(dls.train.after_item.fs)
    # What learn.export() writes (with cloudpickle): no cache, nothing of mlworker.feed.
    assert b"mlworker.feed" not in cloudpickle.dumps(out.new_empty())


def test_worker_processes_are_forked_and_give_the_same_batches(tmp_path):
    folder = write_images(tmp_path / "photos", shape=(30, 40))
    dls = chapter_dls(folder, num_workers=1)
    assert dls.train.fake_l.multiprocessing_context.get_start_method() == "fork"
    with_worker = [(x.clone(), y.clone()) for x, y in dls.valid]
    dls.valid.fake_l.num_workers = 0
    in_process = list(dls.valid)
    assert len(with_worker) == len(in_process) == 2
    for (x, y), (xp, yp) in zip(with_worker, in_process, strict=True):
        assert torch.equal(x, xp) and torch.equal(y, yp)


def test_a_daemonic_process_gets_no_workers_and_a_gpu_gets_them(monkeypatch):
    monkeypatch.delenv(feed.WORKERS_ENV, raising=False)
    assert feed.loader_workers(CPU) == 0
    assert feed.loader_workers(CPU, 3) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert feed.loader_workers(torch.device("cuda")) == feed.MAX_AUTO_WORKERS
    monkeypatch.setenv(feed.WORKERS_ENV, "2")
    assert feed.loader_workers(torch.device("cuda")) == 2
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert feed.loader_workers(torch.device("cuda"), 4) == 0
