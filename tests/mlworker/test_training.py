"""Real, tiny fastai runs on CPU: progress, epochs, cancel, lr_find, results, export and errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mlworker.assets import AssetMissing
from mlworker.training import Cancelled, TrainConfig, TrainingError, run_training

REPO = Path(__file__).resolve().parents[2]

# 20 cats + 20 dogs at 64 px: 32 training images in 4 batches of 8, 8 for validation. At 32 px
# EfficientNet's 1x1 final feature map of silhouettes is all but dead: every image looks alike.
TINY = dict(dataset="silhouettes-catdog", per_class=20, image_size=64, batch_size=8, epochs=1)
N_BATCHES = 4


class RecordingReporter:
    def __init__(self, cancel_after: int | None = None):
        self.progress_calls: list[dict] = []
        self.epoch_calls: list[dict] = []
        self.messages: list[str] = []
        self.cancel_checks = 0
        self.cancel_after = cancel_after

    def progress(self, **kw):
        self.progress_calls.append(kw)

    def epoch_end(self, **kw):
        self.epoch_calls.append(kw)

    def should_cancel(self):
        self.cancel_checks += 1
        return self.cancel_after is not None and len(self.progress_calls) >= self.cancel_after

    def log(self, message):
        self.messages.append(message)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def tiny_run(data_root, tmp_path_factory):
    reporter = RecordingReporter()
    out_dir = tmp_path_factory.mktemp("out")
    result = run_training(TrainConfig(**TINY), data_root=data_root, out_dir=out_dir, reporter=reporter)
    return result, reporter, out_dir


def test_it_reports_progress_across_both_fits_of_fine_tune(tiny_run):
    _, reporter, _ = tiny_run
    calls = reporter.progress_calls
    assert len(calls) == 2 * N_BATCHES  # the frozen head epoch, then one whole-model epoch
    assert [c["phase"] for c in calls] == ["head"] * N_BATCHES + ["whole"] * N_BATCHES
    assert [c["epoch"] for c in calls] == [1] * N_BATCHES + [2] * N_BATCHES
    assert [c["batch"] for c in calls] == list(range(1, N_BATCHES + 1)) * 2
    assert {c["total_epochs"] for c in calls} == {2}
    assert {c["n_batches"] for c in calls} == {N_BATCHES}
    fractions = [c["fraction"] for c in calls]
    assert all(a < b for a, b in zip(fractions, fractions[1:]))
    assert fractions[N_BATCHES - 1] == pytest.approx(0.5)
    assert fractions[-1] == 1.0
    assert all(isinstance(c["train_loss"], float) and math.isfinite(c["train_loss"]) for c in calls)


def test_it_trains_channels_last_in_fp32_on_a_cpu(tiny_run):
    _, reporter, _ = tiny_run
    assert "Model: channels_last, fp32." in reporter.messages  # oneDNN's convolutions are faster so


def test_it_reports_each_epoch_with_float_metrics(tiny_run):
    result, reporter, _ = tiny_run
    epochs = reporter.epoch_calls
    assert [(e["phase"], e["epoch"]) for e in epochs] == [("head", 1), ("whole", 2)]
    for e in epochs:
        for name in ("train_loss", "valid_loss", "error_rate", "accuracy", "seconds"):
            assert isinstance(e[name], float) and math.isfinite(e[name]), name
        assert e["error_rate"] + e["accuracy"] == pytest.approx(1.0)
        assert e["seconds"] > 0
    assert result.epochs == epochs
    assert result.error_rate == epochs[-1]["error_rate"]
    assert reporter.cancel_checks >= len(reporter.progress_calls)


def test_it_returns_confusion_matrix_and_top_losses(tiny_run):
    result, _, out_dir = tiny_run
    assert result.classes == ["False", "True"]  # fastai's vocab for is_cat: True is a cat
    assert (result.n_train, result.n_valid) == (32, 8)
    assert sum(map(sum, result.confusion)) == result.n_valid
    wrong = result.confusion[0][1] + result.confusion[1][0]
    assert result.error_rate == pytest.approx(wrong / result.n_valid)
    assert result.device == "cpu"
    assert len(result.top_losses) == 8  # nine asked, eight validation images
    losses = [t["loss"] for t in result.top_losses]
    assert losses == sorted(losses, reverse=True)
    for t in result.top_losses:
        assert (out_dir / t["image_path"]).is_file()
        assert t["image_path"].startswith("top_losses/")
        assert t["predicted"] in result.classes and t["actual"] in result.classes
        assert 0.5 <= t["probability"] <= 1.0  # the predicted class of two is the likelier one
        # The file name says what the image shows: cats upper-case, dogs lower-case.
        name = Path(t["image_path"]).name.split("_", 1)[1]
        assert t["actual"] == str(name[0].isupper())
    # Every validation image is among the eight: the confusion matrix counts them, rows actual.
    counted = [[0, 0], [0, 0]]
    for t in result.top_losses:
        counted[result.classes.index(t["actual"])][result.classes.index(t["predicted"])] += 1
    assert result.confusion == counted
    assert result.lr_find is None
    json.dumps(result.to_dict())


def test_it_keeps_a_sample_of_the_validation_set_besides_the_top_losses(data_root, tmp_path, monkeypatch):
    from mlworker import training

    monkeypatch.setattr(training, "TOP_LOSSES", 3)
    monkeypatch.setattr(training, "VALIDATION_SAMPLE", 4)
    config = TrainConfig(**(TINY | {"per_class": 30}))  # 12 validation images
    result = run_training(config, data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())
    top = [t for t in result.top_losses if not t.get("sample")]
    sample = [t for t in result.top_losses if t.get("sample")]
    assert len(top) == 3 and [t["loss"] for t in top] == sorted((t["loss"] for t in top), reverse=True)
    assert len(sample) == 4 and all((tmp_path / t["image_path"]).is_file() for t in sample)
    # Other images than the top losses, each named by what it shows (cats upper-case), none lower in
    # loss than... any top loss: the top losses are the highest of all.
    names = {Path(t["image_path"]).name.split("_", 1)[1] for t in top}
    assert not names & {Path(t["image_path"]).name.split("_", 2)[2] for t in sample}
    assert max(t["loss"] for t in sample) <= min(t["loss"] for t in top)
    for t in sample:
        assert t["actual"] == str(Path(t["image_path"]).name.split("_", 2)[2][0].isupper())


@pytest.mark.parametrize(
    ("correct", "skip", "k", "expected"),
    [
        # 6 right, 4 wrong, the first two (wrong) are the top losses: 2 wrong and 2 right, spread out.
        ([False, False, True, True, False, True, True, False, True, True], {0, 1}, 4, [2, 4, 6, 7]),
        ([True] * 10, set(), 3, [0, 3, 6]),  # all right: only right ones
        ([False, True, False, False], set(), 4, [0, 1, 2, 3]),  # fewer than k: all of them
        ([True, False], {0, 1}, 4, []),
    ],
)
def test_the_validation_sample_mixes_right_and_wrong(correct, skip, k, expected):
    from mlworker.training import validation_sample

    assert validation_sample(correct, skip, k) == expected


def test_the_exported_model_loads_and_predicts_in_a_fresh_process(tiny_run, data_root):
    result, _, _ = tiny_run
    assert result.export_path.is_file()
    cat = data_root / "silhouettes-catdog-n20" / "Cat_0001.png"
    code = (
        "import json, socket, sys\n"
        "def refuse(*a, **k): raise OSError('no network in tests')\n"
        "socket.socket.connect = refuse\n"
        "from fastai.vision.all import load_learner\n"
        "learn = load_learner(sys.argv[1])\n"
        "label, idx, probs = learn.predict(sys.argv[2])\n"
        "print(json.dumps({'label': str(label), 'probs': [float(p) for p in probs],\n"
        "                  'django': 'django' in sys.modules, 'vocab': [str(v) for v in learn.dls.vocab],\n"
        "                  'feed': 'mlworker.feed' in sys.modules,\n"
        "                  'loaders': [(type(dl).__name__, dl.fake_l.num_workers) for dl in learn.dls.loaders]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(result.export_path), str(cat)],
        capture_output=True, text=True, timeout=120, cwd="/", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["vocab"] == ["False", "True"]
    assert out["label"] in ("False", "True")
    assert sum(out["probs"]) == pytest.approx(1.0, abs=1e-4)
    assert out["django"] is False
    # fastai's own loaders without workers, as before the tensor cache: a daemonic predict worker may use them.
    assert out["feed"] is False and out["loaders"] == [["TfmdDL", 0], ["TfmdDL", 0]]


def test_it_reads_the_tensor_cache_and_times_the_wait_for_data(tiny_run, data_root):
    result, reporter, _ = tiny_run
    assert any(m.startswith("Data feed: a tensor cache of 40 images") for m in reporter.messages)
    assert (data_root / "feed-cache" / "silhouettes-catdog-n20").is_dir()
    feed = result.feed
    assert feed["images"] == 2 * N_BATCHES * TINY["batch_size"] and feed["batches"] == 2 * N_BATCHES
    assert feed["last"]["images"] == N_BATCHES * TINY["batch_size"]  # the whole-model epoch alone
    assert feed["compute_seconds"] > 0 and 0 <= feed["data_share"] < 1
    assert any(m.startswith("Data feed: 64 training images in 8 batches") for m in reporter.messages)


def test_reading_every_image_instead_trains_the_same_model(tiny_run, data_root, tmp_path):
    cached, _, _ = tiny_run
    reporter = RecordingReporter()
    plain = run_training(
        TrainConfig(**TINY, tensor_cache=False), data_root=data_root, out_dir=tmp_path, reporter=reporter
    )
    assert any("no tensor cache: the run asked for none" in m for m in reporter.messages)
    assert plain.confusion == cached.confusion
    for a, b in zip(plain.epochs, cached.epochs, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["valid_loss"] == pytest.approx(b["valid_loss"], rel=1e-4)
        assert a["error_rate"] == b["error_rate"]


def test_photos_that_are_not_square_are_read_by_a_dataloader_worker(data_root, tmp_path):
    folder = tmp_path / "shapes"
    for kind in ("circle", "square"):
        (folder / kind).mkdir(parents=True)
        for i in range(8):
            image = Image.new("RGB", (48 + i, 36), "white")
            draw = ImageDraw.Draw(image)
            shape = draw.ellipse if kind == "circle" else draw.rectangle
            shape([6 + i, 6, 30 + i, 30], fill=(200, 30, 30))
            image.save(folder / kind / f"{i}.png")
    reporter = RecordingReporter()
    config = TrainConfig(dataset="user-1", data_path=str(folder), image_size=32, batch_size=4, loader_workers=1)
    result = run_training(config, data_root=data_root, out_dir=tmp_path / "out", reporter=reporter)
    assert result.classes == ["circle", "square"] and result.n_train + result.n_valid == 16
    assert any("read one at a time by 1 DataLoader worker process" in m for m in reporter.messages), reporter.messages


def write_shapes(folder: Path, size: int, colour) -> Path:
    """Square images of circles and squares, one folder per class, as a student uploads them."""
    for kind in ("circle", "square"):
        (folder / kind).mkdir(parents=True)
        for i in range(8):
            image = Image.new("RGB", (size, size), "white")
            draw = ImageDraw.Draw(image)
            shape = draw.ellipse if kind == "circle" else draw.rectangle
            shape([4 + i, 4, 20 + i, 20], fill=colour)
            image.save(folder / kind / f"{i}.png")
    return folder


def test_each_students_data_set_keeps_its_own_tensor_cache(data_root, tmp_path):
    """A job links a student's images into its own scratch folder (always named `data`): the cache is
    kept per data set, so one student's job neither evicts another's cache nor reads it."""
    root = tmp_path / "data-root"
    first = write_shapes(tmp_path / "job-1" / "data", 32, (200, 30, 30))
    second = write_shapes(tmp_path / "job-2" / "data", 40, (30, 30, 200))
    again = write_shapes(tmp_path / "job-3" / "data", 32, (200, 30, 30))

    def run(dataset, folder):
        reporter = RecordingReporter()
        config = TrainConfig(dataset=dataset, data_path=str(folder), image_size=32, batch_size=4)
        run_training(config, data_root=root, out_dir=folder.parent / "out", reporter=reporter)
        return next(m for m in reporter.messages if m.startswith("Data feed: a tensor cache"))

    assert "built now" in run("user-1", first)
    assert "built now" in run("user-2", second)
    assert "read back" in run("user-1", again)  # the same images, in another job's scratch folder
    caches = sorted(p.relative_to(root / "feed-cache").parent.as_posix() for p in (root / "feed-cache").glob("*/*.pt"))
    assert caches == ["user-1", "user-2"]


class SeedSet(Exception):
    pass


@pytest.mark.parametrize("reproducible", [False, True])
def test_cudnn_is_made_deterministic_only_when_the_student_asks(data_root, tmp_path, monkeypatch, reproducible):
    import fastai.vision.all

    calls = []

    def set_seed(seed, reproducible=False):
        calls.append((seed, reproducible))
        raise SeedSet  # enough: nothing trains

    monkeypatch.setattr(fastai.vision.all, "set_seed", set_seed)
    with pytest.raises(SeedSet):
        config = TrainConfig(**TINY, reproducible=reproducible)
        run_training(config, data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())
    assert calls == [(42, reproducible)]


def test_it_leaves_no_scratch_files_in_the_data_set_folder(tiny_run, data_root):
    folder = data_root / "silhouettes-catdog-n20"
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".png")) == ["journey-dataset.json"]


@pytest.mark.parametrize("cancel_after", [2, N_BATCHES + 1])
def test_it_stops_within_one_batch_when_cancelled(data_root, tmp_path, cancel_after):
    reporter = RecordingReporter(cancel_after=cancel_after)
    with pytest.raises(Cancelled):
        run_training(TrainConfig(**TINY), data_root=data_root, out_dir=tmp_path, reporter=reporter)
    assert len(reporter.progress_calls) == cancel_after
    # Cancelled in the head epoch: no epoch row; in the whole-model fit: the head's row only.
    assert len(reporter.epoch_calls) == (0 if cancel_after <= N_BATCHES else 1)
    assert not (tmp_path / "model.pkl").exists()


def test_lr_find_suggests_a_rate_without_reporting_progress(data_root, tmp_path):
    reporter = RecordingReporter()
    # 20 mock batches, not fastai's 100: the same code path, a fifth of the time.
    config = TrainConfig(**TINY, lr_find=True, lr_find_iterations=20)
    result = run_training(config, data_root=data_root, out_dir=tmp_path, reporter=reporter)
    assert len(reporter.progress_calls) == 2 * N_BATCHES  # lr_find's mock batches are not progress
    assert len(reporter.epoch_calls) == 2
    assert any(m.startswith("lr_find") for m in reporter.messages)
    suggestion = result.lr_find["suggestion"]
    assert 1e-7 < suggestion < 10
    assert result.base_lr == suggestion
    points = result.lr_find["points"]
    assert 10 < len(points) <= 20
    lrs = [lr for lr, _ in points]
    assert lrs == sorted(lrs)
    assert not (tmp_path / "models").exists()  # lr_find's scratch copy is gone


def test_it_uses_an_explicit_learning_rate(data_root, tmp_path):
    config = TrainConfig(**TINY, learning_rate=1e-3)
    result = run_training(config, data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())
    assert result.base_lr == 1e-3


def test_it_trains_on_ten_classes_from_folders(data_root, tmp_path):
    config = TrainConfig(dataset="silhouettes-10", per_class=5, image_size=64, batch_size=8, epochs=1)
    result = run_training(config, data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())
    assert result.classes == ["Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra"]
    assert len(result.confusion) == 10 and all(len(row) == 10 for row in result.confusion)
    assert sum(map(sum, result.confusion)) == result.n_valid == 10


@pytest.mark.parametrize(
    "change, words",
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch size"),
        ({"image_size": 4}, "image size"),
        ({"valid_pct": 1.0}, "validation"),
        ({"learning_rate": -1.0}, "learning rate"),
        ({"dataset": "mnist"}, "data set"),
        ({"arch": "vit"}, "architecture"),
        ({"dataset": "pets", "per_class": 5}, "silhouette"),
    ],
)
def test_it_rejects_settings_no_run_can_use(tmp_path, change, words):
    config = TrainConfig(**(TINY | change))
    with pytest.raises(TrainingError, match=words):
        run_training(config, data_root=tmp_path, out_dir=tmp_path / "out", reporter=RecordingReporter())
    assert not (tmp_path / "out").exists()


def test_it_says_when_a_batch_is_larger_than_the_training_set(data_root, tmp_path):
    config = TrainConfig(**(TINY | {"batch_size": 64}))
    with pytest.raises(TrainingError, match="Lower the batch size"):
        run_training(config, data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())


@pytest.mark.parametrize(
    "error",
    [
        lambda torch: torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        lambda torch: RuntimeError("CUDA error: out of memory"),
    ],
)
def test_it_turns_gpu_out_of_memory_into_advice(data_root, tmp_path, monkeypatch, error):
    import torch
    from fastai.learner import Learner

    def fine_tune(self, *args, **kwargs):
        raise error(torch)

    monkeypatch.setattr(Learner, "fine_tune", fine_tune)
    with pytest.raises(TrainingError, match="GPU ran out of memory. Lower the batch size or the image size"):
        run_training(TrainConfig(**TINY), data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())


def test_other_errors_propagate_unchanged(data_root, tmp_path, monkeypatch):
    from fastai.learner import Learner

    def fine_tune(self, *args, **kwargs):
        raise ValueError("something else")

    monkeypatch.setattr(Learner, "fine_tune", fine_tune)
    with pytest.raises(ValueError, match="something else"):
        run_training(TrainConfig(**TINY), data_root=data_root, out_dir=tmp_path, reporter=RecordingReporter())


def test_missing_weights_stop_the_run_before_training(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    monkeypatch.delenv("JOURNEY_ALLOW_DOWNLOADS", raising=False)
    reporter = RecordingReporter()
    with pytest.raises(AssetMissing, match="resnet34-b627a593.pth"):
        run_training(
            TrainConfig(**(TINY | {"arch": "resnet34"})), data_root=data_root, out_dir=tmp_path, reporter=reporter
        )
    assert reporter.progress_calls == []


def test_importing_the_training_module_loads_neither_torch_nor_fastai():
    code = (
        "import sys\n"
        "import mlworker.training, mlworker.datasets, mlworker.assets, mlworker.labels\n"
        "print(sorted(m for m in ('torch', 'fastai', 'timm', 'django') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_reporter_callback_runs_after_fastais_recorder():
    from fastai.learner import Recorder

    from mlworker import training

    assert training.ReporterCallback.order == Recorder.order + 1
    assert training.ReporterCallback.__qualname__ == "ReporterCallback"


@pytest.mark.parametrize("valid_pct", [0.05, 0.1, 0.2, 0.25, 0.3, 0.33, 0.5])
def test_split_sizes_cut_as_fastais_random_splitter_does(valid_pct):
    from fastai.data.transforms import RandomSplitter

    from mlworker.splits import split_sizes

    for n in range(2, 120):
        train, valid = RandomSplitter(valid_pct, seed=42)(list(range(n)))
        assert split_sizes(n, valid_pct) == (len(train), len(valid)), n


def test_a_batch_as_large_as_the_training_set_trains_and_one_more_does_not(data_root, tmp_path):
    # 5 cats + 5 dogs at valid_pct 0.2: 8 training images; fastai drops an incomplete last batch.
    from mlworker.splits import split_sizes

    small = TINY | {"per_class": 5, "epochs": 1, "image_size": 32}
    assert split_sizes(10, 0.2) == (8, 2)
    result = run_training(
        TrainConfig(**(small | {"batch_size": 8})), data_root=data_root, out_dir=tmp_path / "a",
        reporter=RecordingReporter(),
    )  # fmt: skip
    assert result.n_train == 8
    with pytest.raises(TrainingError, match="Only 8 training images"):
        run_training(TrainConfig(**(small | {"batch_size": 9})), data_root=data_root, out_dir=tmp_path / "b",
                     reporter=RecordingReporter())  # fmt: skip
