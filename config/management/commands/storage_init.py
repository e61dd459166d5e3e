"""Make the file storage ready and prove it works: `python manage.py storage_init`.

With the object store (JOURNEY_STORAGE=s3): creates the bucket when it is missing, writes, reads and
deletes a probe object with the keys, and checks that the bucket refuses a reader without them.
With local files: creates MEDIA_ROOT. Idempotent; the compose `migrate` service runs it.
"""

import urllib.error
import urllib.request
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the object store's bucket when missing, and check that it works and is private."

    def handle(self, *args, **options):
        if settings.JOURNEY_STORAGE != "s3":
            settings.MEDIA_ROOT.mkdir(parents=True, exist_ok=True)
            self.stdout.write(f"Files: local disk at {settings.MEDIA_ROOT} (MEDIA_ROOT).")
            return
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = settings.AWS_STORAGE_BUCKET_NAME
        where = f"{settings.AWS_S3_ENDPOINT_URL or 'Amazon S3'}, bucket {bucket}"
        try:
            created = self._ensure_bucket(default_storage, bucket)
            probe = default_storage.save(f"journey-probe/{uuid.uuid4().hex}.txt", ContentFile(b"journey"))
            with default_storage.open(probe, "rb") as fh:
                read = fh.read()
            anonymous = self._anonymous_status(default_storage, probe)
            default_storage.delete(probe)
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(f"The object store at {where} does not work with these settings: {exc}") from None
        if read != b"journey":
            raise CommandError(f"The object store at {where} gave back other bytes than it was given.")
        if anonymous < 400:
            raise CommandError(
                f"The bucket {bucket} answers readers without keys (HTTP {anonymous}): every stored file would be "
                "public. Remove its public-read policy or anonymous access in the store's own settings."
            )
        self.stdout.write(
            f"Files: object store at {where} ({'created now' if created else 'already there'}); "
            f"write, read and delete work, and a reader without keys is refused (HTTP {anonymous})."
        )

    @staticmethod
    def _ensure_bucket(storage, bucket: str) -> bool:
        from botocore.exceptions import ClientError

        client = storage.connection.meta.client
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
                raise
        region = settings.AWS_S3_REGION_NAME
        if region and region != "us-east-1":  # Amazon's own rule; other stores ignore it
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        else:
            client.create_bucket(Bucket=bucket)
        return True

    @staticmethod
    def _anonymous_status(storage, name: str) -> int:
        """What the store answers a GET of the object without any signature."""
        url = storage.unsigned_connection.meta.client.generate_presigned_url(
            "get_object", Params={"Bucket": storage.bucket_name, "Key": name}
        )
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code
