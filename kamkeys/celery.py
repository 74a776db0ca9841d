"""The Celery app: Redis as broker in production, tasks run eagerly in the embedded default."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kamkeys.settings")

app = Celery("kamkeys")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
