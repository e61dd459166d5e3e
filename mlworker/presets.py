"""The form's presets: named sets of the chapter's knobs, each with what it costs and what it gives.

Plain Python, read by the form's view and by bench/preset.py, which measures the figures quoted here
(BENCHMARKS.md, issue 18). The costs are wall times of a whole job's training process on two CPU
cores, with the data set's tensor cache already built (the first job at a new image size on a
worker builds it, a few seconds more); a GPU takes a fraction of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlworker.jobsettings import JobSettings

# The chapter's own values (JobSettings' defaults), those the form shows.
CHAPTER_DEFAULTS = {name: value for name, value in asdict(JobSettings()).items() if value is not None}


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    changes: dict = field(default_factory=dict)  # from the chapter's values
    costs: str = ""
    gives: str = ""

    @property
    def initial(self) -> dict:
        return {**CHAPTER_DEFAULTS, **self.changes}

    @property
    def code(self) -> str:
        """The knobs it sets, as the chapter's code writes them."""
        s = self.initial
        return f"Resize({s['image_size']}), bs={s['batch_size']}, fine_tune({s['epochs']})" + (
            f", base_lr={s['learning_rate']:g}" if s.get("learning_rate") else ""
        )


# Costs and results measured on this project's build machine (two CPU cores, 2026-12-03; BENCHMARKS.md,
# "Feeding the model"): bench/feed.py for the quick look, bench/preset.py for the accurate one, on
# seeds the presets were not chosen on. The chapter's run at 224 px was not timed at rest.
PRESETS: tuple[Preset, ...] = (
    Preset(
        "chapter",
        "The chapter's run",
        costs="several minutes on two CPU cores; seconds on a GPU",
        gives="the chapter's exact settings, at the chapter's image size",
    ),
    Preset(
        "quick",
        "Quick look",
        {"image_size": 64, "batch_size": 32},
        costs="under a minute on two CPU cores",
        gives="about 23% wrong on the cat/dog silhouettes: enough to see training work, not to trust the model",
    ),
    Preset(
        "accurate",
        "Near the chapter's result",
        {"image_size": 96, "batch_size": 32, "epochs": 3, "learning_rate": 0.02},
        costs="about two and a half minutes on two CPU cores, about half the time of fine_tune(2) at 128 pixels",
        gives="about 7% wrong on the cat/dog silhouettes (5% to 8%, depending on the seed): the chapter's point, "
        "a model that is rarely wrong",
    ),
)
PRESETS_BY_KEY = {p.key: p for p in PRESETS}
