# kamkeys: one image for web (gunicorn), worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=kamkeys.settings

WORKDIR /app
RUN useradd --create-home --uid 10001 kamkeys

COPY pyproject.toml README.md ./
COPY kamkeys ./kamkeys
COPY accounts ./accounts
COPY devices ./devices
COPY readrights ./readrights
COPY keyvault ./keyvault
COPY templates ./templates
COPY static ./static
COPY manage.py ./
RUN pip install . \
 && KAMKEYS_VAR_DIR=/tmp/build-var python manage.py collectstatic --noinput \
 && rm -rf /tmp/build-var

USER kamkeys
EXPOSE 8000
CMD ["gunicorn", "kamkeys.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
