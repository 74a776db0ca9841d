"""The Celery app: Redis as broker in production, tasks run eagerly in the embedded default."""

import contextlib
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")

app = Celery("kamkeys")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _heartbeat_on_start(**_: object) -> None:
    """A worker that has just started is alive: /healthz need not wait for beat."""
    from kamkeys.health import record_heartbeat

    # A failure here must not stop the worker: beat's heartbeat follows.
    with contextlib.suppress(Exception):
        record_heartbeat()
