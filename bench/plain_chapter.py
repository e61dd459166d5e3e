"""The chapter's experiment as a plain script, without Journey: the baseline for bench/jobs.py.

Same data files (prepared by mlworker.datasets), same architecture builder, same fastai calls,
same outputs (metrics, confusion matrix, top losses, export). Prints one JSON line.

    python bench/plain_chapter.py --image-size 64 --data-root var/bench/data
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="silhouettes-catdog")
    p.add_argument("--arch", default="efficientnet_lite0")
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--per-class", type=int, default=None)
    p.add_argument("--valid-pct", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-root", type=Path, required=True)
    args = p.parse_args()

    from fastai.vision.all import (
        ClassificationInterpretation,
        ImageDataLoaders,
        Resize,
        accuracy,
        default_device,
        error_rate,
        get_image_files,
        set_seed,
        vision_learner,
    )

    from mlworker import feed
    from mlworker.archs import get_arch
    from mlworker.datasets import prepare_dataset
    from mlworker.labels import is_cat

    device = default_device()
    set_seed(args.seed)
    data = prepare_dataset(args.dataset, args.data_root, per_class=args.per_class)
    # The images reach the DataLoaders as in a job (mlworker.feed): this script leaves out Journey's
    # job machinery, not the way it feeds fastai.
    common = dict(valid_pct=args.valid_pct, seed=args.seed, item_tfms=Resize(args.image_size), bs=args.batch_size,
                  **feed.loader_kwargs(device, feed.loader_workers(device)))  # fmt: skip
    if data.kind == "name_func":
        dls = ImageDataLoaders.from_name_func(data.path, get_image_files(data.path), label_func=is_cat, **common)
    else:
        dls = ImageDataLoaders.from_folder(data.path, **common)
    feed.attach_cache(dls, data.path, root=args.data_root / "feed-cache")
    learn = vision_learner(
        dls, get_arch(args.arch, not args.no_pretrained), metrics=[error_rate, accuracy],
        pretrained=not args.no_pretrained,
    )  # fmt: skip
    learn.to_channelslast(use_amp=device.type == "cuda")
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(args.epochs)
        # Read the last epoch's metrics now: every get_preds below (the interpretation's) runs the
        # Recorder through one validation-only "epoch", whose record lacks the train loss. Read after
        # it, the names were one place off the values, and accuracy was printed as the error rate.
        names = [n for n in learn.recorder.metric_names[1:] if n != "time"]
        last = dict(zip(names, learn.recorder.values[-1], strict=True))
        valid = dls.valid.new(shuffle=False, drop_last=False)
        preds, targs, losses = learn.get_preds(dl=valid, with_loss=True)  # one pass, as a job's
        interp = ClassificationInterpretation(learn, valid, losses)
        interp.top_losses(9)
    with tempfile.TemporaryDirectory() as tmp:
        learn.dls = feed.exportable(learn.dls)
        learn.export(Path(tmp) / "model.pkl")
    print(json.dumps({"error_rate": float(last["error_rate"]), "accuracy": float(last["accuracy"]),
                      "seconds": time.perf_counter() - START}))  # fmt: skip


if __name__ == "__main__":
    main()
