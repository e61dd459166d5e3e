"""File storage in a private bucket of an S3-compatible object store (`JOURNEY_STORAGE=s3`), so that
web and workers on different hosts share files through it and nothing else.

django-storages' S3 backend with what Journey adds: signed links made for the host browsers reach the
store at (a signature covers the host it was made for), and the object's version in one request and
a download of exactly that version, for the workers' file cache (mlworker.filecache).
"""

from __future__ import annotations

from storages.backends.s3 import S3Storage
from storages.utils import clean_name, setting


def _status(err) -> int:
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


class PrivateS3Storage(S3Storage):
    """Objects are private: read with the keys, or through a short-lived signed link."""

    def __init__(self, **options):
        super().__init__(**options)
        self.public_endpoint_url = self.public_endpoint_url or self.endpoint_url
        self._public_client = None

    def get_default_settings(self):
        return {**super().get_default_settings(), "public_endpoint_url": setting("AWS_S3_PUBLIC_ENDPOINT_URL")}

    def __getstate__(self):
        state = super().__getstate__()
        state["_public_client"] = None
        return state

    def _key(self, name: str) -> str:
        return self._normalize_name(clean_name(name))

    def _client(self):
        # The connection is per thread (django-storages keeps it thread-local); boto3's clients are
        # thread-safe, its resources (self.bucket) are not: the file cache fetches from threads.
        return self.connection.meta.client

    def object_stat(self, name: str) -> tuple[str, int, float]:
        """(ETag, size, modified time as a timestamp) in one HEAD; FileNotFoundError when it is gone."""
        from botocore.exceptions import ClientError

        try:
            head = self._client().head_object(Bucket=self.bucket_name, Key=self._key(name))
        except ClientError as err:
            if _status(err) == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
        return head["ETag"], head["ContentLength"], head["LastModified"].timestamp()

    def download_version(self, name: str, etag: str, fileobj) -> bool:
        """Write the object's bytes to `fileobj` if it still has this ETag; False when it has another."""
        from botocore.exceptions import ClientError

        try:
            response = self._client().get_object(Bucket=self.bucket_name, Key=self._key(name), IfMatch=etag)
        except ClientError as err:
            if _status(err) == 412:
                return False
            if _status(err) == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from None
            raise
        for chunk in response["Body"].iter_chunks(2**20):
            fileobj.write(chunk)
        return True

    def url(self, name, parameters=None, expire=None, http_method=None):
        """A signed link to the object that expires after `expire` seconds (AWS_QUERYSTRING_EXPIRE),
        made for AWS_S3_PUBLIC_ENDPOINT_URL: the store as browsers reach it, which may not be the
        address web and workers use."""
        if self.public_endpoint_url == self.endpoint_url:
            return super().url(name, parameters=parameters, expire=expire, http_method=http_method)
        params = {**(parameters or {}), "Bucket": self.bucket_name, "Key": self._key(name)}
        return self._signer().generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expire or self.querystring_expire, HttpMethod=http_method
        )

    def _signer(self):
        # Signing is local arithmetic: this client never connects anywhere.
        if self._public_client is None:
            self._public_client = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
            )
        return self._public_client
