"""Does the data keep the device busy? One command, offline, a few minutes on one GPU; it runs on a
CPU too, slowly (issue 18).

    python bench/gpu.py                          # on a GPU: 224 px, batch 64, the three feeds
    python bench/gpu.py --image-size 64 --batch-size 32 --per-class 100 --steps 5    # a quick CPU check
    python bench/gpu.py --precision              # also fp32 against mixed precision, two architectures

1. The ceiling: training images per second of the default experiment's model (efficientnet_lite0
   body and fastai's head for two classes) on one synthetic batch that never leaves the device, in
   a plain PyTorch loop (Adam; on a GPU mixed precision and channels_last, on a CPU fp32 and
   channels_last, as a job trains), at the experiment's image size and batch size.
2. The default offline experiment (cat/dog silhouettes, pretrained efficientnet_lite0, fine_tune(1))
   through mlworker.training, as a job runs it, once per feed:
   - cache: the data set's tensor cache (built before the timing, as on a worker that has run
     that size before), batch transforms on the device;
   - workers: every image read, decoded and resized per epoch by DataLoader worker processes
     (the path a student's photos that are not square take);
   - plain: every image read in the training process, as before issue 18 (num_workers=0).
   For each: training images per second in the whole-model epoch, as a share of the ceiling, and
   its time waiting for data against computing (mlworker.feed.FeedTimer), error rate, wall time.

Everything in one process, on one device, one after another. Prints a table and a JSON line.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO / "var" / "bench-gpu" / "data"
FEEDS = {  # TrainConfig changes for each feed
    "cache": {"tensor_cache": True},
    "workers": {"tensor_cache": False},  # as many workers as a GPU worker here would start (mlworker.feed)
    "plain": {"tensor_cache": False, "loader_workers": 0},
}


def ceiling(*, device, image_size, batch_size, steps, n_out=2):
    """Images/s of the experiment's model on one batch already on the device: no data cost at all."""
    import torch
    from fastai.vision.learner import create_vision_model

    from mlworker.archs import efficientnet_lite0

    model = create_vision_model(efficientnet_lite0, n_out, pretrained=False)
    return _train_steps(model, device=device, image_size=image_size, batch_size=batch_size, steps=steps,
                        amp=device.type == "cuda", channels_last=True, n_out=n_out, opt=torch.optim.Adam)  # fmt: skip


def _train_steps(model, *, device, image_size, batch_size, steps, amp, channels_last, n_out, opt):
    import torch

    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device).to(memory_format=memory_format).train()
    optimizer = opt(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, 3, image_size, image_size, device=device).to(memory_format=memory_format)
    y = torch.randint(0, n_out, (batch_size,), device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp and device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(5):  # cuDNN's autotuner, allocator warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


def precision_table(*, device, steps, batch_size):
    """fp32 against mixed precision + channels_last, 224 px, efficientnet_lite0 and resnet34 (1,000 classes)."""
    import torch
    import torchvision

    from mlworker.archs import efficientnet_lite0

    out = {}
    for name in ("efficientnet_lite0", "resnet34"):
        rates = {}
        for amp in (False, True):
            model = efficientnet_lite0(pretrained=False) if name == "efficientnet_lite0" else (
                torchvision.models.resnet34(weights=None)
            )  # fmt: skip
            rates[amp] = _train_steps(model, device=device, image_size=224, batch_size=batch_size, steps=steps,
                                      amp=amp, channels_last=amp, n_out=1000, opt=torch.optim.SGD)  # fmt: skip
        out[name] = {"fp32_img_s": round(rates[False], 1), "amp_channels_last_img_s": round(rates[True], 1),
                     "speedup": round(rates[True] / rates[False], 2)}  # fmt: skip
        print(f"{name}: fp32 {rates[False]:.0f} img/s, mixed precision + channels_last {rates[True]:.0f} img/s "
              f"({rates[True] / rates[False]:.2f}x)", flush=True)  # fmt: skip
    return out


class Capture:
    def __init__(self):
        self.messages = []

    def progress(self, **kw): ...
    def epoch_end(self, **kw): ...

    def should_cancel(self):
        return False

    def log(self, message):
        self.messages.append(message)


def experiment(feed: str, *, image_size, batch_size, per_class):
    import torch

    from mlworker import datasets
    from mlworker.feed import loader_workers
    from mlworker.training import TrainConfig, _dataloaders, run_training

    changes = dict(FEEDS[feed])
    if feed == "workers":  # on a CPU too, where a job would start none, so that the path runs
        changes["loader_workers"] = loader_workers(torch.device("cuda"))
    config = TrainConfig(image_size=image_size, batch_size=batch_size, epochs=1, per_class=per_class, **changes)
    if config.tensor_cache:  # build it first: the timing is of a worker that has run this size before
        data = datasets.prepare_dataset(config.dataset, DATA, per_class=per_class)
        _dataloaders(data, config, torch.device("cpu"), DATA)
    reporter = Capture()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_training(config, data_root=DATA, out_dir=Path(tmp), reporter=reporter)
    whole = result.feed["last"]  # fine_tune's whole-model epoch; the ceiling trains the whole model too
    return {
        "feed": feed,
        "how": next((m for m in reporter.messages if m.startswith("Data feed: a tensor") or "one at a time" in m), ""),
        "wall_s": round(time.perf_counter() - t0, 2),
        "fine_tune_s": round(result.train_seconds, 2),
        "error_rate": result.error_rate,
        "img_s": round(whole["images_per_second"], 1),
        "data_s": round(whole["data_seconds"], 2),
        "compute_s": round(whole["compute_seconds"], 2),
        "data_share": round(whole["data_share"], 3),
        "device": result.device,
    }


def main():
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30, help="timed steps of the synthetic ceiling")
    p.add_argument("--feeds", nargs="+", default=list(FEEDS), choices=list(FEEDS))
    p.add_argument("--per-class", type=int, default=None, help="fewer images, for a quick check on a CPU")
    p.add_argument("--precision", action="store_true", help="also fp32 against mixed precision (224 px)")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}; {args.image_size} px, batch {args.batch_size}", flush=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as a job that did not ask for reproducibility
    report = {"device": name, "image_size": args.image_size, "batch_size": args.batch_size}
    if args.precision:
        report["precision"] = precision_table(device=device, steps=args.steps, batch_size=args.batch_size)
    top = ceiling(device=device, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps)
    report["ceiling_img_s"] = round(top, 1)
    print(f"ceiling (synthetic batch on the device, plain PyTorch loop): {top:.0f} img/s", flush=True)
    report["experiments"] = []
    for feed in args.feeds:
        e = experiment(feed, image_size=args.image_size, batch_size=args.batch_size, per_class=args.per_class)
        e["share_of_ceiling"] = round(e["img_s"] / top, 3)
        report["experiments"].append(e)
        print(f"{feed:<8} {e['img_s']:7.0f} img/s = {e['share_of_ceiling']:.0%} of the ceiling; whole-model epoch "
              f"{e['data_s']:.1f} s waiting for data, {e['compute_s']:.1f} s computing "
              f"({e['data_share']:.0%} waiting); "
              f"fine_tune {e['fine_tune_s']:.1f} s, run {e['wall_s']:.1f} s, error rate {e['error_rate']:.4f}\n"
              f"         {e['how']}", flush=True)  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
