# One image for Aviso's web and worker processes, installed as scripts/bootstrap production installs:
# every package from requirements/production.txt with its hashes, then Aviso itself with no dependencies.
#   docker build -t aviso .
#   docker run --env-file .env -p 5000:5000 aviso            # web (gunicorn; PORT, WEB_CONCURRENCY)
#   docker run --env-file .env aviso scripts/procfile worker  # worker (RQ worker with its scheduler)
# compose.yaml runs both with a Redis. Production settings only: REDIS_URL, AVISO_SECRET_KEY, PUBLIC_BASE_URL,
# TWILIO_* (README, "Production"; docs/going-live.md). Untested here: the machines this was written on cannot
# pull base images.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VENV=/opt/aviso/venv \
    AVISO_ENV=production \
    AVISO_DATA_DIR=/var/lib/aviso \
    PORT=5000

RUN groupadd --system --gid 10001 aviso \
 && useradd --system --uid 10001 --gid aviso --home-dir /var/lib/aviso --create-home aviso

WORKDIR /opt/aviso/app

# The packages first, in their own layer: rebuilt only when the lock file changes.
COPY requirements/production.txt requirements/production.txt
RUN python -m venv "$VENV" \
 && "$VENV/bin/python" -m pip install --quiet --require-hashes -r requirements/production.txt

COPY . .
RUN "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . \
 && "$VENV/bin/pybabel" -q compile -d bot/translations

USER aviso
EXPOSE 5000
CMD ["scripts/procfile", "web"]
