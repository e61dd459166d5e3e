"""Data sets on disk: the chapter's file-name labels, folders, idempotent and concurrent preparation."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from mlworker import assets, datasets
from mlworker.assets import AssetMissing
from mlworker.datasets import SILHOUETTE_CLASSES, dataset_summary, load_silhouettes, prepare_dataset, sample_images
from mlworker.labels import is_cat


def test_the_package_data_are_ten_blocks_of_a_thousand_28px_images():
    images, labels = load_silhouettes()
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [c for c in range(10) for _ in range(1000)]


def test_the_class_order_matches_the_shapes():
    # The package never names its int labels; its README lists the classes alphabetically.
    # Two shapes pin that order down: giraffes are the tallest silhouettes, bears the widest.
    images, labels = load_silhouettes()

    def median_aspect(c):
        ratios = []
        for im in images[labels == c] > 127:
            rows, cols = np.flatnonzero(im.any(1)), np.flatnonzero(im.any(0))
            ratios.append((rows[-1] - rows[0] + 1) / (cols[-1] - cols[0] + 1))
        return float(np.median(ratios))

    aspects = [median_aspect(c) for c in range(10)]
    assert SILHOUETTE_CLASSES[int(np.argmax(aspects))] == "Giraffe"
    assert SILHOUETTE_CLASSES[int(np.argmin(aspects))] == "Bear"


def test_it_names_cats_upper_case_and_dogs_lower_case_like_the_chapter(tmp_path):
    data = prepare_dataset("silhouettes-catdog", tmp_path, per_class=5)
    assert data.path == tmp_path / "silhouettes-catdog-n5"
    assert (data.kind, data.classes, data.n_images) == ("name_func", ["False", "True"], 10)
    files = sorted(p.name for p in data.path.glob("*.png"))
    assert files == [f"Cat_{i:04d}.png" for i in range(1, 6)] + [f"dog_{i:04d}.png" for i in range(1, 6)]
    assert not [p for p in data.path.iterdir() if p.is_dir()]  # flat, as Pets' images/ is
    assert [is_cat(name) for name in files] == [True] * 5 + [False] * 5


def test_the_cat_files_hold_the_cat_images(tmp_path):
    images, labels = load_silhouettes()
    data = prepare_dataset("silhouettes-catdog", tmp_path, per_class=3)
    cats = images[labels == SILHOUETTE_CLASSES.index("Cat")]
    dogs = images[labels == SILHOUETTE_CLASSES.index("Dog")]
    for i in range(3):
        assert np.array_equal(np.asarray(Image.open(data.path / f"Cat_{i + 1:04d}.png")), cats[i])
        assert np.array_equal(np.asarray(Image.open(data.path / f"dog_{i + 1:04d}.png")), dogs[i])


def test_ten_classes_go_in_one_folder_each(tmp_path):
    from fastai.data.transforms import parent_label  # how ImageDataLoaders.from_folder labels them

    data = prepare_dataset("silhouettes-10", tmp_path, per_class=3)
    assert (data.kind, data.classes, data.n_images) == ("folder", list(SILHOUETTE_CLASSES), 30)
    for name in SILHOUETTE_CLASSES:
        files = sorted((data.path / name).glob("*.png"))
        assert len(files) == 3
        assert {parent_label(f) for f in files} == {name}


def test_preparing_twice_reuses_the_files(tmp_path):
    first = prepare_dataset("silhouettes-catdog", tmp_path, per_class=4)
    stamp = (first.path / "Cat_0001.png").stat().st_mtime_ns
    second = prepare_dataset("silhouettes-catdog", tmp_path, per_class=4)
    assert second == first
    assert (first.path / "Cat_0001.png").stat().st_mtime_ns == stamp
    assert sorted(os.listdir(tmp_path)) == ["silhouettes-catdog-n4"]


def test_concurrent_preparations_end_with_one_complete_folder(tmp_path):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: prepare_dataset("silhouettes-10", tmp_path, per_class=20), range(4)))
    assert len({r.path for r in results}) == 1
    assert sorted(os.listdir(tmp_path)) == ["silhouettes-10-n20"]  # no temporary folders left
    assert len(list(results[0].path.glob("*/*.png"))) == 200


def test_a_preparation_that_loses_the_race_discards_its_copy(tmp_path, monkeypatch):
    real_rename = os.rename
    winner = {}

    def rename_after_another_worker(src, dst):
        # Another worker finishes first, between our writing and our rename.
        monkeypatch.setattr(datasets.os, "rename", real_rename)
        winner["data"] = prepare_dataset("silhouettes-catdog", tmp_path, per_class=2)
        real_rename(src, dst)

    monkeypatch.setattr(datasets.os, "rename", rename_after_another_worker)
    ours = prepare_dataset("silhouettes-catdog", tmp_path, per_class=2)
    assert ours == winner["data"]
    assert sorted(os.listdir(tmp_path)) == ["silhouettes-catdog-n2"]


def test_the_full_sets_have_the_documented_sizes():
    catdog = dataset_summary("silhouettes-catdog")
    assert (catdog["n_images"], catdog["classes"]) == (2000, ["False", "True"])
    assert catdog["per_class"] == {"Cat": 1000, "Dog": 1000}
    ten = dataset_summary("silhouettes-10")
    assert ten["n_images"] == 10_000 and ten["classes"] == list(SILHOUETTE_CLASSES)
    assert set(ten["per_class"].values()) == {1000}
    assert ten["available"] is True and ten["reason"] == ""


def test_samples_come_with_what_they_show():
    samples = sample_images("silhouettes-catdog", n=4)
    assert [label for label, _ in samples] == ["cat", "dog", "cat", "dog"]
    assert all(im.size == (28, 28) for _, im in samples)
    ten = sample_images("silhouettes-10", n=12)
    assert [label for label, _ in ten][:10] == list(SILHOUETTE_CLASSES)


@pytest.fixture
def empty_fastai_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTAI_HOME", str(tmp_path / "fastai"))
    monkeypatch.delenv("JOURNEY_ALLOW_DOWNLOADS", raising=False)
    return tmp_path / "fastai"


def test_pets_are_unavailable_without_the_archive(empty_fastai_home, tmp_path):
    options = {o.key: o for o in assets.dataset_options()}
    assert [o.key for o in options.values()] == ["pets", "silhouettes-catdog", "silhouettes-10"]
    assert not options["pets"].available
    assert "oxford-iiit-pet.tgz" in options["pets"].reason
    assert str(empty_fastai_home / "archive") in options["pets"].reason
    assert options["silhouettes-catdog"].available and options["silhouettes-10"].available
    with pytest.raises(AssetMissing):
        prepare_dataset("pets", tmp_path / "data")
    assert not empty_fastai_home.exists()  # looking wrote no fastai config
    assert dataset_summary("pets")["n_images"] == datasets.PETS_N_IMAGES


def test_pets_are_available_once_the_archive_is_in_place(empty_fastai_home):
    (empty_fastai_home / "archive").mkdir(parents=True)
    (empty_fastai_home / "archive" / "oxford-iiit-pet.tgz").write_bytes(b"")
    assert assets.dataset_available("pets") == (True, "")


def test_fastai_config_paths_are_honoured(empty_fastai_home, tmp_path):
    empty_fastai_home.mkdir()
    (empty_fastai_home / "config.ini").write_text(f"[DEFAULT]\ndata = {tmp_path / 'elsewhere'}\narchive = arch\n")
    assert assets.fastai_data_dir() == tmp_path / "elsewhere"
    assert assets.fastai_archive_dir() == empty_fastai_home / "arch"
    (tmp_path / "elsewhere" / "oxford-iiit-pet" / "images").mkdir(parents=True)
    assert assets.dataset_available("pets")[0]


def test_downloads_can_be_allowed_where_a_network_exists(empty_fastai_home, monkeypatch):
    monkeypatch.setenv("JOURNEY_ALLOW_DOWNLOADS", "1")
    assert assets.dataset_available("pets") == (True, "")


def test_it_refuses_unknown_data_sets(tmp_path):
    with pytest.raises(KeyError):
        prepare_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError):
        prepare_dataset("silhouettes-10", tmp_path, per_class=0)
