"""The default experiment through today's code and through this checkout, in one run (issue 18).

    .venv/bin/python bench/feed.py [--seeds 42 1 7] [--repeats 1] [--baseline f4e119d] [--image-size 64]

The baseline is an export of another commit (`git archive`, default: the commit before the tensor
cache), run from its own folder with the same virtual environment, data files, settings and seed.
Each run is a fresh `python` process calling that code's `mlworker.training.run_training`, as a job's
training process does. First one run of this checkout with its tensor cache removed (it builds the
cache, as the first job of a data set and size on a worker does), then a pair for each seed, their
order alternating. Both sides' training batches are timed by the same callback, defined here, into
time waiting for data and time computing.

Prints each run, the median ratios (baseline / this checkout) of the whole run and of `fine_tune`,
and both sides' error rates by seed; exits non-zero when their means over the seeds differ by more
than SAME_ERROR_TOLERANCE (see there why one seed's may differ a little).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "var" / "bench-feed"
DEFAULT_BASELINE = "f4e119d"  # main before the feed: every image decoded per epoch, no channels_last on a CPU
# channels_last on a CPU changes the order in which the convolutions add up, so the two sides do not
# train bit-identical models and one seed's error rates may differ by a few of the 400 validation
# images either way. Over the seeds, their means must agree within this (8 images).
SAME_ERROR_TOLERANCE = 0.02
FEED_CACHE_FOLDER = "feed-cache"  # mlworker.training.FEED_CACHE_FOLDER, under the data root


def export_commit(rev: str) -> tuple[Path, str]:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO, check=True, capture_output=True, text=True)
    sha = sha.stdout.strip()
    folder = WORK / f"code-{sha}"
    if not (folder / "mlworker" / "training.py").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=REPO, check=True, capture_output=True)
        with tempfile.TemporaryFile() as fh:
            fh.write(archive.stdout)
            fh.seek(0)
            with tarfile.open(fileobj=fh) as tar:
                tar.extractall(folder, filter="data")
    return folder, sha


def run_child(code: Path, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(code), "--image-size", str(args.image_size),
           "--batch-size", str(args.batch_size), "--epochs", str(args.epochs), "--seed", str(args.seed),
           "--arch", args.arch, *(["--per-class", str(args.per_class)] if args.per_class else [])]  # fmt: skip
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=code)
    if out.returncode:
        sys.exit(f"a run of {code} failed:\n{out.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process_seconds": wall}


def child(code: Path, args) -> None:
    """One run of `code`'s run_training, in this fresh process."""
    sys.path.insert(0, str(code))
    from fastai.vision.all import Callback, Learner, find_bs  # fine_tune is patched onto Learner there

    from mlworker.training import TrainConfig, run_training

    class Timer(Callback):
        order = 1000  # last: after the Recorder has read the loss back

        def __init__(self):
            super().__init__()
            self.data = self.compute = 0.0
            self.images = 0

        def before_train(self):
            self.mark = time.perf_counter()

        def before_batch(self):
            if self.training and not hasattr(self.learn, "lr_finder"):
                now = time.perf_counter()
                self.data += now - self.mark
                self.mark = now

        def after_batch(self):
            if self.training and not hasattr(self.learn, "lr_finder"):
                now = time.perf_counter()
                self.compute += now - self.mark
                self.images += find_bs(self.learn.yb)
                self.mark = now

    timer = Timer()
    fine_tune = Learner.fine_tune

    def timed_fine_tune(self, *a, **kw):
        self.add_cb(timer)
        try:
            return fine_tune(self, *a, **kw)
        finally:
            self.remove_cb(timer)

    Learner.fine_tune = timed_fine_tune

    class Quiet:
        def progress(self, **kw): ...
        def epoch_end(self, **kw): ...
        def log(self, message): ...

        def should_cancel(self):
            return False

    config = TrainConfig(dataset="silhouettes-catdog", arch=args.arch, pretrained=True, epochs=args.epochs,
                         image_size=args.image_size, valid_pct=0.2, seed=args.seed, batch_size=args.batch_size,
                         per_class=args.per_class)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        result = run_training(config, data_root=WORK / "data", out_dir=Path(tmp), reporter=Quiet())
    r, t = result, timer
    print(json.dumps({"error_rate": r.error_rate, "seconds": r.seconds, "train_seconds": r.train_seconds,
                      "data_seconds": t.data, "compute_seconds": t.compute, "images": t.images}))  # fmt: skip


def line(name: str, r: dict) -> str:
    waited = r["data_seconds"] / (r["data_seconds"] + r["compute_seconds"])
    return (f"  {name:<9} run_training {r['seconds']:6.1f} s, fine_tune {r['train_seconds']:6.1f} s "
            f"(waiting for data {r['data_seconds']:5.1f} s, {waited:4.0%}; computing {r['compute_seconds']:5.1f} s), "
            f"error rate {r['error_rate']:.4f}, process {r['process_seconds']:.1f} s")  # fmt: skip


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--baseline", default=DEFAULT_BASELINE)
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 7], help="a pair of runs for each")
    p.add_argument("--repeats", type=int, default=1, help="times over the seeds")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)  # a child's
    p.add_argument("--arch", default="efficientnet_lite0")
    p.add_argument("--per-class", type=int, default=None, help="fewer images, to check that the benchmark runs")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args)

    base_code, sha = export_commit(args.baseline)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    print(f"baseline {sha} against this checkout ({head.stdout.strip()}{', with changes' if dirty else ''}): "
          f"silhouettes-catdog, {args.arch}, fine_tune({args.epochs}), {args.image_size} px, batch {args.batch_size}, "
          f"seeds {args.seeds}; {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    shutil.rmtree(WORK / "data" / FEED_CACHE_FOLDER, ignore_errors=True)
    args.seed = args.seeds[0]
    cold = run_child(REPO, args)
    print("cold: this checkout's first run builds its tensor cache", flush=True)
    print(line("new/cold", cold), flush=True)
    pairs = []
    for i, seed in enumerate([s for _ in range(args.repeats) for s in args.seeds]):
        args.seed = seed
        order = [("baseline", base_code), ("new", REPO)]
        runs = dict((name, run_child(code, args)) for name, code in (order if i % 2 == 0 else order[::-1]))
        pairs.append({**runs, "seed": seed})
        b, n = runs["baseline"], runs["new"]
        print(f"pair {i + 1}, seed {seed}: ratio {b['seconds'] / n['seconds']:.2f} (run_training), "
              f"{b['train_seconds'] / n['train_seconds']:.2f} (fine_tune)", flush=True)  # fmt: skip
        print(line("baseline", b), flush=True)
        print(line("new", n), flush=True)
    ratio = statistics.median(r["baseline"]["seconds"] / r["new"]["seconds"] for r in pairs)
    ratio_ft = statistics.median(r["baseline"]["train_seconds"] / r["new"]["train_seconds"] for r in pairs)
    before = statistics.mean(r["baseline"]["error_rate"] for r in pairs)
    after = statistics.mean(r["new"]["error_rate"] for r in pairs)
    print(f"median speed-up, baseline / new: {ratio:.2f}x for run_training, {ratio_ft:.2f}x for fine_tune "
          f"({len(pairs)} pairs)", flush=True)  # fmt: skip
    by_seed = ", ".join(f"{r['seed']}: {r['baseline']['error_rate']:.4f} / {r['new']['error_rate']:.4f}" for r in pairs)
    print(f"error rates by seed, baseline / new: {by_seed}; mean {before:.4f} / {after:.4f}; "
          f"new with a cold cache {cold['error_rate']:.4f}", flush=True)  # fmt: skip
    if abs(before - after) > SAME_ERROR_TOLERANCE:
        sys.exit(f"FAILED: the mean error rates differ by {abs(before - after):.4f}, more than {SAME_ERROR_TOLERANCE}.")


if __name__ == "__main__":
    main()
