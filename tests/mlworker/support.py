"""Small images and zips for the mlworker tests, made in memory: the one home of what several test
modules share (fixtures live in conftest.py)."""

import io
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, ImageDraw

KINDS = ["exported model", "top-loss image", "data-set sample", "prediction image", "prediction thumbnail"]


def served_files(stored_files):
    """Each kind of stored file (tests/fixtures/files.py): its view's URL and its name in storage."""
    job, dataset, p = stored_files.job, stored_files.dataset, stored_files.prediction
    return {
        "exported model": (reverse("mlworker:model", args=[job.pk]), job.model_file),
        "top-loss image": (reverse("mlworker:top_loss", args=[job.pk, 0]), job.top_losses[0]["image_path"]),
        "data-set sample": (reverse("mlworker:dataset_sample", args=[dataset.pk, 0]), dataset.samples[0][1]),
        "prediction image": (reverse("mlworker:prediction_image", args=[p.pk, "full"]), p.image),
        "prediction thumbnail": (reverse("mlworker:prediction_image", args=[p.pk, "thumb"]), p.thumbnail),
    }


def assert_only_the_owner_gets(client, url, content, *, owner, others):
    """An anonymous visitor is sent to log in, every one of `others` gets 404, the owner the file."""
    assert client.get(url).status_code == 302
    for other in others:
        client.force_login(other)
        assert client.get(url).status_code == 404, other.username
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == content


def picture(kind, i, size=64):
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    offset = i % 7
    if kind == "square":
        draw.rectangle([10 + offset, 10, 50 + offset, 50], fill=(200, 30, 30))
    else:
        draw.ellipse([8, 8 + offset, 56, 56], fill=(30, 30, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_zip(entries):
    """entries: name -> bytes, or (bytes, ZipInfo tweaks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"target.png")
            else:
                zf.writestr(name, data)
    return out.getvalue()


def good_zip(per_class=6):
    entries = {
        f"shapes/{kind}/{kind}_{i}.png": picture(kind, i) for kind in ("square", "circle") for i in range(per_class)
    }
    return make_zip(entries)


def png_bytes(color="white"):
    out = io.BytesIO()
    Image.new("RGB", (28, 28), color).save(out, format="PNG")
    return out.getvalue()


def png_file(name="mine.png"):
    return SimpleUploadedFile(name, png_bytes(), content_type="image/png")


def silhouette(label):
    """A real image of the offline data set, as a file to post: a cat (upper-case) or dog silhouette."""
    from mlworker.datasets import sample_images

    image = next(img for name, img in sample_images("silhouettes-catdog", n=4) if name == label)
    out = io.BytesIO()
    image.save(out, format="PNG")
    out.seek(0)
    out.name = f"my-{label}.png"
    return out
