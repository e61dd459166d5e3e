"""Run one claimed training job in a fresh process: `python -m mlworker.runner JOB_ID TOKEN`.

The Celery task starts this process and waits for it. A fresh process per job frees GPU
memory for certain after a failure, keeps CUDA out of any process that forks, and lets
fastai's DataLoaders run outside Celery's daemonic pool processes.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from dataclasses import asdict
from pathlib import Path


def _store_results(job_id: int, out_dir: Path, result) -> dict:
    """Save the exported model and top-loss images from the job's scratch folder to file storage, where
    the web and the prediction workers (on any host) read them."""
    from django.core.files import File
    from django.core.files.storage import default_storage

    # A random folder per run: the names in storage cannot be guessed (they are only ever served by
    # views that check who asks, but a name that cannot be guessed is a second lock).
    prefix = f"jobs/{job_id}/{uuid.uuid4().hex}"
    with open(result.export_path, "rb") as fh:
        model_file = default_storage.save(f"{prefix}/model.pkl", File(fh))
    top_losses = []
    for item in result.top_losses:
        local = out_dir / item["image_path"]
        with open(local, "rb") as fh:
            stored = default_storage.save(f"{prefix}/top_losses/{local.name}", File(fh))
        top_losses.append({**item, "image_path": stored})
    return {"model_file": model_file, "top_losses": top_losses}


def _materialize_user_dataset(job, dest: Path) -> Path:
    """Put a student's checked images in `dest`, one folder per class, from file storage through this
    worker's file cache (linked, so the job keeps them whole whatever the cache evicts meanwhile)."""
    from django.core.files.storage import default_storage

    from mlworker.assets import AssetMissing
    from mlworker.selectors import datasets_usable_by
    from mlworker.services.storage import file_cache

    # Asked again now, not when the job was saved: a data set deleted or unshared since is not used.
    dataset = datasets_usable_by(job.owner).filter(pk=int(job.dataset.removeprefix("user-"))).first()
    if dataset is None:
        raise AssetMissing(
            "This data set was deleted, is not ready, or is no longer shared with you, so this experiment "
            "cannot run. Upload your images again, or ask the classmate who shared it."
        )
    try:
        file_cache().link(default_storage, [(name, dest / folder / Path(name).name) for folder, name in dataset.files])
    except FileNotFoundError:
        raise AssetMissing("Some images of your data set are gone from storage. Upload it again.") from None
    return dest


def run_job(job_id: int, token: str) -> int:
    from django.conf import settings

    from mlworker.assets import AssetMissing
    from mlworker.models import JobState, TrainingJob
    from mlworker.reporting import DbReporter, Heartbeat, LostClaim
    from mlworker.services import job_finish

    log = logging.getLogger("mlworker.runner")
    job = TrainingJob.objects.get(pk=job_id)
    heartbeat = Heartbeat(job_id, token, every=settings.JOURNEY_HEARTBEAT_SECONDS)
    heartbeat.start()
    # This worker's own scratch folder for the job (its data set's images, lr_find's files, the export
    # and top-loss images before they are stored); removed when the job ends, whatever the outcome.
    out_dir = Path(settings.JOURNEY_WORK_DIR) / f"job-{job_id}-{token}"
    try:
        from mlworker.training import Cancelled, TrainConfig, TrainingError, run_training

        user_data = job.dataset.startswith("user-")
        data_path = str(_materialize_user_dataset(job, out_dir / "data")) if user_data else None
        config = TrainConfig(**asdict(job.job_settings), data_path=data_path)
        log.info("training starts: %s", config)
        reporter = DbReporter(job_id, token)
        result = run_training(config, data_root=Path(settings.JOURNEY_DATA_DIR), out_dir=out_dir, reporter=reporter)
        stored = _store_results(job_id, out_dir, result)
        job_finish(
            job_id=job_id,
            token=token,
            state=JobState.SUCCEEDED,
            progress=1.0,
            phase="done",
            error_rate=result.error_rate,
            accuracy=result.accuracy,
            seconds=result.seconds,
            device=result.device,
            classes=list(result.classes),
            confusion=result.confusion,
            lr_find_result=result.lr_find,
            n_train=result.n_train,
            n_valid=result.n_valid,
            train_losses=reporter.loss_points(),
            **stored,
        )
        log.info(
            "training succeeded: error rate %.4f in %.1f s on %s", result.error_rate, result.seconds, result.device
        )
    except Cancelled:
        job_finish(job_id=job_id, token=token, state=JobState.CANCELLED, phase="cancelled")
        log.info("training cancelled at the student's request")
    except LostClaim:
        log.warning("job was re-queued by housekeeping while this run went on; this run stops")
    except (TrainingError, AssetMissing) as exc:
        job_finish(job_id=job_id, token=token, state=JobState.FAILED, error_message=str(exc))
        log.warning("training failed: %s", exc)
    except Exception:
        log.exception("training crashed")
        job_finish(
            job_id=job_id,
            token=token,
            state=JobState.FAILED,
            error_message=(
                f"Something went wrong inside the training run. Try again; if it fails the same way, "
                f"tell your instructor the job number ({job_id}) so they can read the worker's log."
            ),
        )
    finally:
        heartbeat.stop()
        shutil.rmtree(out_dir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import logging.config

    from django.conf import settings

    from config.logging import current_job_id

    logging.config.dictConfig(settings.LOGGING)
    job_id, token = int(argv[1]), argv[2]
    current_job_id.set(str(job_id))
    return run_job(job_id, token)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
