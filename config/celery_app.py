"""The Celery application: reads CELERY_* Django settings and finds each app's tasks.py."""

import importlib
import os
import sys

from celery import Celery
from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown
from django.core.exceptions import ImproperlyConfigured
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Read the settings now, so that a wrong DATABASE_URL or CELERY_BROKER_URL stops a worker,
# beat or the web server with one line naming the setting, not a traceback.
try:
    importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
except ImproperlyConfigured as exc:
    sys.exit(f"Journey cannot start: {exc}")

# The embedded broker with bindings shared between processes (see config/broker.py).
TRANSPORT_ALIASES["sqla"] = "config.broker:Transport"

app = Celery("journey")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**kwargs):
    # Workers log through Django's LOGGING (stdout, with the job id on every line).
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_ready.connect
def start_presence_beat(sender=None, **kwargs):
    # Each worker records that it is alive, for the jobs pages (mlworker/workers.py).
    from mlworker.workers import on_worker_ready

    on_worker_ready(sender=sender)


@worker_process_init.connect
def warm_up_pool_process(**kwargs):
    # Each pool process loads its queues' models once, before its first task (config/warmup.py).
    from config.warmup import pin_threads, warm_up

    queues = app.amqp.queues.consume_from or {}
    pin_threads(queues)
    warm_up(queues)


@worker_shutdown.connect
def stop_presence_beat(**kwargs):
    from mlworker.workers import on_worker_shutdown

    on_worker_shutdown()
