"""GPU benchmark, one command, offline, a few minutes on one GPU (runs on a CPU too, slowly):

    python bench/gpu.py [--steps 30] [--batch-size 64] [--skip-experiment]

1. Training throughput (images/s) of efficientnet_lite0 and resnet34 at 224 px on synthetic
   batches: fp32 against mixed precision + channels_last, the two measured in the same run.
2. Wall time of the default offline experiment (cat/dog silhouettes, pretrained
   efficientnet_lite0, fine_tune(1)) at 224 px through mlworker.training, as a job runs it.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def throughput(arch_name, *, device, steps, batch_size, amp):
    import torch
    import torchvision

    from mlworker.archs import efficientnet_lite0

    model = efficientnet_lite0(pretrained=False) if arch_name == "efficientnet_lite0" else (
        torchvision.models.resnet34(weights=None)
    )  # fmt: skip
    model = model.to(device)
    memory_format = torch.channels_last if amp else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch_size, 3, 224, 224, device=device).to(memory_format=memory_format)
    y = torch.randint(0, 1000, (batch_size,), device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


class _QuietReporter:
    def progress(self, **kw): ...
    def epoch_end(self, **kw): ...
    def should_cancel(self):
        return False

    def log(self, message):
        print("  " + message, flush=True)


def experiment(device_name):
    from mlworker.training import TrainConfig, run_training

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_training(
            TrainConfig(image_size=224, batch_size=64, epochs=1),
            data_root=Path(tmp) / "data", out_dir=Path(tmp) / "out", reporter=_QuietReporter(),
        )  # fmt: skip
        return {"wall_s": time.perf_counter() - t0, "train_s": result.train_seconds, "error_rate": result.error_rate,
                "device": result.device}  # fmt: skip


def main():
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-experiment", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    torch.backends.cudnn.benchmark = True
    report = {"device": name}
    for arch in ("efficientnet_lite0", "resnet34"):
        fp32 = throughput(arch, device=device, steps=args.steps, batch_size=args.batch_size, amp=False)
        mixed = throughput(arch, device=device, steps=args.steps, batch_size=args.batch_size, amp=True)
        report[arch] = {"fp32_img_s": round(fp32, 1), "amp_channels_last_img_s": round(mixed, 1),
                        "speedup": round(mixed / fp32, 2)}  # fmt: skip
        print(f"{arch}: fp32 {fp32:.0f} img/s, mixed precision + channels_last {mixed:.0f} img/s "
              f"({mixed / fp32:.2f}x)", flush=True)  # fmt: skip
    if not args.skip_experiment:
        report["experiment_224px"] = experiment(name)
        e = report["experiment_224px"]
        print(f"default experiment at 224 px: {e['wall_s']:.1f} s wall ({e['train_s']:.1f} s fine_tune), "
              f"error rate {e['error_rate']:.4f} on {e['device']}", flush=True)  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
