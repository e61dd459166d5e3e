"""A worker's read-through cache of stored files, on the local storage backend (the object store's
own version checks are tested in test_object_store.py): fetched once, fetched again when the object
changes, bounded with the least recently used out first, and safe for processes sharing it."""

import multiprocessing
import os
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from mlworker.filecache import FileCache


class CountingStorage(FileSystemStorage):
    """The local backend, counting the objects it is asked to read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.opened = []

    def _open(self, name, mode="rb"):
        self.opened.append(name)
        return super()._open(name, mode)


@pytest.fixture
def store(tmp_path):
    return CountingStorage(location=tmp_path / "store")


def put(store, name, data: bytes, *, mtime=None):
    if store.exists(name):
        store.delete(name)
    saved = store.save(name, ContentFile(data))
    assert saved == name
    if mtime is not None:
        os.utime(store.path(name), (mtime, mtime))  # the test's own look at the local backend
    return name


def test_it_fetches_an_object_once_and_then_answers_from_its_disk(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    put(store, "jobs/1/model.pkl", b"a learner")
    first = cache.get(store, "jobs/1/model.pkl")
    second = cache.get(store, "jobs/1/model.pkl")
    assert first == second and first.read_bytes() == b"a learner"
    assert first.suffix == ".pkl" and first.is_relative_to(tmp_path / "cache")
    assert store.opened == ["jobs/1/model.pkl"] and (cache.misses, cache.hits) == (1, 1)


@pytest.mark.parametrize("change", ["other bytes", "same size, later time"])
def test_a_changed_object_is_fetched_again(store, tmp_path, change):
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    put(store, "a.bin", b"version one", mtime=1_000_000)
    assert cache.get(store, "a.bin").read_bytes() == b"version one"
    if change == "other bytes":
        put(store, "a.bin", b"version two, longer", mtime=1_000_000)
    else:
        put(store, "a.bin", b"version 1!!", mtime=1_000_500)
    again = cache.get(store, "a.bin")
    assert again.read_bytes() == (b"version two, longer" if change == "other bytes" else b"version 1!!")
    assert len(store.opened) == 2 and cache.misses == 2


def test_a_gone_object_is_said_to_be_gone(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    with pytest.raises(FileNotFoundError):
        cache.get(store, "jobs/9/model.pkl")


def test_an_entry_cut_short_is_fetched_again(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    put(store, "a.bin", b"0123456789")
    path = cache.get(store, "a.bin")
    path.write_bytes(b"01234")  # what a crash in the middle of a write could leave
    assert cache.get(store, "a.bin").read_bytes() == b"0123456789" and cache.misses == 2


def _age(path, seconds_ago):
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


def test_it_evicts_the_least_recently_used_past_its_bound(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=250, keep_seconds=0)
    for name in ("a", "b", "c"):
        put(store, name, name.encode() * 100)
    a = cache.get(store, "a")
    b = cache.get(store, "b")
    _age(a, 30)
    _age(b, 20)
    assert cache.get(store, "a") == a  # used again: now the most recent
    c = cache.get(store, "c")  # 300 bytes > 250: the least recently used one goes
    assert a.exists() and c.exists() and not b.exists()
    assert cache.usage() == 200
    assert cache.get(store, "b").read_bytes() == b"b" * 100  # and comes back when asked for


def test_an_entry_used_within_the_keep_time_stays_even_past_the_bound(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=150, keep_seconds=60)
    paths = [cache.get(store, put(store, n, b"x" * 100)) for n in ("a", "b")]
    assert all(p.exists() for p in paths)  # another process may be about to open them
    _age(paths[0], 120)
    cache.evict()
    assert not paths[0].exists() and paths[1].exists()


def test_a_linked_copy_is_the_callers_own_and_outlives_eviction(store, tmp_path):
    cache = FileCache(tmp_path / "cache", max_bytes=0, keep_seconds=0)
    put(store, "datasets/1/cat/x.png", b"a cat")
    put(store, "datasets/1/dog/y.png", b"a dog")
    job = tmp_path / "job" / "data"
    cache.link(
        store, [("datasets/1/cat/x.png", job / "cat" / "x.png"), ("datasets/1/dog/y.png", job / "dog" / "y.png")]
    )
    assert cache.usage() == 0  # bound 0: the cache kept nothing...
    assert (job / "cat" / "x.png").read_bytes() == b"a cat"  # ...and the job's files are whole
    assert (job / "dog" / "y.png").read_bytes() == b"a dog"


def test_across_file_systems_the_callers_file_is_a_copy(store, tmp_path, monkeypatch):
    import errno

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    cache = FileCache(tmp_path / "cache", max_bytes=10**6)
    put(store, "datasets/1/cat/x.png", b"a cat")
    cache.link(store, [("datasets/1/cat/x.png", tmp_path / "job" / "x.png")])
    copy, cached = tmp_path / "job" / "x.png", cache.get(store, "datasets/1/cat/x.png")
    assert copy.read_bytes() == b"a cat" and copy.stat().st_ino != cached.stat().st_ino


def _worker(args):
    root, location, names, rounds = args
    store = FileSystemStorage(location=location)
    cache = FileCache(root, max_bytes=2_000, keep_seconds=0)
    for _ in range(rounds):
        for name, path in cache.get_many(store, names, threads=3).items():
            data = path.read_bytes() if path.exists() else None
            # Evicted already by another process (keep_seconds=0): fine; never a partial file.
            assert data is None or data == name.encode() * 50, name
    return cache.hits + cache.misses


def test_processes_sharing_the_cache_never_see_a_partial_file(store, tmp_path):
    names = [put(store, f"obj-{i:02d}", f"obj-{i:02d}".encode() * 50) for i in range(24)]  # 24 x 300 bytes
    root = tmp_path / "cache"
    args = (root, store.location, names, 5)
    with multiprocessing.get_context("fork").Pool(3) as pool:
        counts = pool.map(_worker, [args] * 3)
    assert counts == [len(names) * 5] * 3
    assert not list((root / "tmp").glob("*.part"))
    cache = FileCache(root, max_bytes=2_000, keep_seconds=0)
    cache.evict()
    assert cache.usage() <= 2_000
    cache.keep_seconds = 60  # what it hands out now is kept while the test reads it
    for name, path in cache.get_many(store, names).items():
        assert path.read_bytes() == name.encode() * 50
