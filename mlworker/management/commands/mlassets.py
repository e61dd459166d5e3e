from django.conf import settings
from django.core.management.base import BaseCommand

from mlworker import assets


class Command(BaseCommand):
    help = "List the data sets and pretrained weights this machine can use, and where Journey looks for them."

    def handle(self, *args, **options):
        self.stdout.write("Where Journey looks:")
        self.stdout.write(f"  torch weights (TORCH_HOME):   {assets.torch_checkpoints_dir()}")
        self.stdout.write(f"  fastai data (FASTAI_HOME):    {assets.fastai_data_dir()}")
        self.stdout.write(f"  fastai archives:              {assets.fastai_archive_dir()}")
        self.stdout.write(f"  prepared images (JOURNEY_DATA_DIR): {settings.JOURNEY_DATA_DIR}")
        if settings.JOURNEY_STORAGE == "s3":
            endpoint = settings.AWS_S3_ENDPOINT_URL or "Amazon S3"
            where = f"object store {endpoint}, bucket {settings.AWS_STORAGE_BUCKET_NAME}"
        else:
            where = f"local disk {settings.MEDIA_ROOT}"
        self.stdout.write(f"  stored files (JOURNEY_STORAGE): {where}")
        self.stdout.write(
            f"  this worker's cache of them (JOURNEY_CACHE_DIR): {settings.JOURNEY_CACHE_DIR}, "
            f"at most {settings.JOURNEY_CACHE_MB} MB (JOURNEY_CACHE_MB)"
        )
        self.stdout.write(f"  downloads allowed ({assets.ALLOW_DOWNLOADS_ENV}): {assets.downloads_allowed()}")
        for title, options in (("Data sets", assets.dataset_options()), ("Pretrained weights", assets.arch_options())):
            self.stdout.write(f"\n{title}:")
            for o in options:
                mark = "available" if o.available else "missing"
                self.stdout.write(f"  [{mark:>9}] {o.key:<20} {o.label}")
                if o.reason:
                    self.stdout.write(f"              {o.reason}")
