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
COPY audit ./audit
COPY accounts ./accounts
COPY devices ./devices
COPY readrights ./readrights
COPY keyvault ./keyvault
COPY keyfiles ./keyfiles
COPY api ./api
COPY templates ./templates
COPY locale ./locale
COPY static ./static
COPY manage.py ./
COPY deploy ./deploy
# Static files with the production storage (hashed names, compressed; WhiteNoise serves them
# with a one-year immutable Cache-Control). KAMKEYS_BUILD_STEP=1 stands throwaway values in
# for the secrets, in this step only, and lets nothing but collectstatic run: no secret is
# needed to build the image, and none ends up in it.
# The apps' bytecode is compiled here, once: PYTHONDONTWRITEBYTECODE keeps the workers from
# writing it, so without this step each worker would compile every module from source at start.
RUN pip install . \
 && python -m compileall -q kamkeys audit accounts devices readrights keyvault keyfiles api \
 && KAMKEYS_ENV=production KAMKEYS_BUILD_STEP=1 python manage.py collectstatic --noinput

USER kamkeys
EXPOSE 8000
# GUNICORN_BIND (0.0.0.0:8000), GUNICORN_WORKERS (2): see deploy/gunicorn.conf.py.
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "kamkeys.wsgi:application"]
