"""Uploads cut off while they arrive: a file past its limit is dropped chunk by chunk, before Django
has written the rest of it to disk, and the view says why in the words the service would."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.views.decorators.csrf import csrf_exempt, csrf_protect


def zip_too_large(limit: int) -> str:
    return f"The zip is larger than {limit // 2**20} MB, the most we accept."


def zip_limit() -> int:
    return settings.JOURNEY_MAX_DATASET_UPLOAD_MB * 2**20


def prediction_limit(name: str) -> tuple[int, str]:
    """A file sent for predictions: a zip of images, or one image."""
    from mlworker import images

    if name.lower().endswith(".zip"):
        limit = zip_limit()
        return limit, f"{name}: {zip_too_large(limit)}"
    return images.MAX_UPLOAD_BYTES, images.too_large_to_read(name, images.MAX_UPLOAD_BYTES)


def dataset_limit(name: str) -> tuple[int, str]:
    limit = zip_limit()
    return limit, zip_too_large(limit)


class CappedUploadHandler(FileUploadHandler):
    """First of the request's upload handlers: counts each file's bytes as they arrive and, once a
    file passes its limit, skips the rest of it (read from the connection, kept nowhere), so the
    handlers after it (memory, temporary file) never get more than the limit of it.

    `limit_for(name)` gives a file's limit in bytes and the message that refuses it; `refused` keeps
    the messages of the files cut off, in the order they came.
    """

    def __init__(self, request, *, limit_for: Callable[[str], tuple[int, str]]):
        super().__init__(request)
        self.limit_for = limit_for
        self.refused: list[str] = []
        self.seen = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.seen = 0
        self.limit, self.message = self.limit_for(self.file_name or "the file")

    def receive_data_chunk(self, raw_data, start):
        self.seen += len(raw_data)
        if self.seen > self.limit:
            self.refused.append(self.message)
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler makes the file


def capped_uploads(limit_for: Callable[[str], tuple[int, str]]):
    """A view decorator: the view's uploads are cut off past their limits while they arrive; the
    view finds the messages of the files cut off in `request.uploads_refused`.

    The handler must be in place before anything reads request.POST, and the CSRF check reads it:
    so the check is made here, after the handler is in (Django's documented way), not skipped.
    """

    def decorator(view):
        protected = csrf_protect(view)

        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            handler = CappedUploadHandler(request, limit_for=limit_for)
            request.upload_handlers.insert(0, handler)
            request.uploads_refused = handler.refused
            return protected(request, *args, **kwargs)

        return wrapped

    return decorator
