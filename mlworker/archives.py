"""Reading a student's zip of images safely: nothing is extracted by name, nothing is trusted.

Knows nothing of Django. `scan_zip` yields each usable image with its label and each skipped
member with the reason; a problem with the whole archive raises ArchiveRejected.
"""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from mlworker.images import ImageRejected, open_upload

RULES = {
    "folders": "One folder per class (the folder's name is the label)",
    "uppercase": "The chapter's rule: a name starting upper-case is a cat, lower-case a dog",
    "prefix": "The name before the last underscore (beagle_12.jpg is a beagle)",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar"}
SYSTEM_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Limits:
    max_files: int = 2000
    max_file_bytes: int = 10 * 2**20
    max_total_bytes: int = 500 * 2**20
    max_ratio: int = 200  # uncompressed / compressed size of one member: above this, a bomb
    max_images: int | None = None  # images to decode at most; more is refused before any is opened
    fit: int | None = None  # images come back no larger than training at this size uses (images.shrink)


class ArchiveRejected(ValueError):
    pass


class TooManyImages(ArchiveRejected):
    def __init__(self, count: int, limit: int):
        super().__init__(f"The archive holds {count:,} images; the most we accept at once is {limit:,}.")
        self.count = count


@dataclass(frozen=True)
class Item:
    name: str
    label: str
    image: object  # PIL.Image, RGB


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


def label_for(name: str, rule: str) -> str | None:
    path = PurePosixPath(name)
    if rule == "folders":
        return path.parent.name or None
    if rule == "uppercase":
        return "cat" if path.name[:1].isupper() else "dog" if path.name[:1].islower() else None
    if rule == "any":  # images to predict: no label needed
        return "image"
    if rule == "prefix":
        match = re.match(r"^(.+)_[^_]*$", path.stem)
        return match.group(1).lower() if match else None
    raise ValueError(f"unknown rule {rule!r}")


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name) is not None


def scan_zip(path, *, rule: str, limits: Limits = Limits()):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ArchiveRejected("The file is not a zip archive we can read.") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_files:
            raise ArchiveRejected(
                f"The archive holds {len(members):,} entries; the most we accept is {limits.max_files:,}."
            )
        for info in members:
            if _unsafe(info.filename):
                raise ArchiveRejected(
                    f"The archive contains a path that points outside its own folder ({info.filename!r}). "
                    "Make the zip again from the folder of images."
                )
        declared = sum(i.file_size for i in members)
        if declared > limits.max_total_bytes:
            raise ArchiveRejected(
                f"Unpacked, the archive would take {declared / 2**20:.0f} MB; the most we accept is "
                f"{limits.max_total_bytes // 2**20} MB."
            )
        # Decide about every member from the directory alone, then count what would be decoded:
        # nothing is opened before the whole archive is known to be within the limits.
        plan = [(info, _plan(info, rule, limits)) for info in members if not info.is_dir()]
        to_open = sum(1 for _, step in plan if isinstance(step, str))
        if limits.max_images is not None and to_open > limits.max_images:
            raise TooManyImages(to_open, limits.max_images)
        total = 0
        for info, step in plan:
            name = info.filename
            if isinstance(step, Skipped):
                yield step
                continue
            with archive.open(info) as fh:
                data = fh.read(limits.max_file_bytes + 1)  # never trust the declared size
            total += len(data)
            if total > limits.max_total_bytes:
                raise ArchiveRejected(f"The images add up to more than {limits.max_total_bytes // 2**20} MB.")
            if len(data) > limits.max_file_bytes:
                yield Skipped(name, f"larger than {limits.max_file_bytes // 2**20} MB")
                continue
            try:
                image = open_upload(data, name=PurePosixPath(name).name, fit=limits.fit)
            except ImageRejected as exc:
                yield Skipped(name, str(exc))
                continue
            yield Item(name, step, image)


def _plan(info: zipfile.ZipInfo, rule: str, limits: Limits) -> Skipped | str:
    """What to do with one member, from the zip's directory alone: skip it (and why) or its label."""
    name = info.filename
    base = PurePosixPath(name).name
    if "__MACOSX" in PurePosixPath(name).parts or base in SYSTEM_NAMES or base.startswith("._"):
        return Skipped(name, "a system file, not an image")
    if stat.S_ISLNK(info.external_attr >> 16):
        return Skipped(name, "a symbolic link; links are not followed")
    if PurePosixPath(base).suffix.lower() in ARCHIVE_SUFFIXES:
        return Skipped(name, "an archive inside the archive; those are not opened")
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise ArchiveRejected(
            f"{name} unpacks to {info.file_size / info.compress_size:.0f} times its packed size: "
            "this looks like a zip bomb, so the archive is refused."
        )
    if info.file_size > limits.max_file_bytes:
        return Skipped(name, f"larger than {limits.max_file_bytes // 2**20} MB")
    label = label_for(name, rule)
    if not label:
        return Skipped(name, "no label under the chosen rule (for folders: put it inside a class folder)")
    return label
