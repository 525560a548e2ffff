# syntax=docker/dockerfile:1
# Keyhouse, production image: build the virtualenv in one stage, run it as a non-root user in
# another. The container applies migrations, then serves on port 8000.
#
#   docker build -t keyhouse .
#   docker run -p 8000:8000 \
#     -e KEYHOUSE_ENVIRONMENT=production \
#     -e KEYHOUSE_ISSUER=https://auth.example.com \
#     -e KEYHOUSE_SERVER_SECRET=... (32+ random characters, kept in your secret store) \
#     -e KEYHOUSE_DATABASE_URL=postgresql+asyncpg://keyhouse:...@db:5432/keyhouse \
#     keyhouse

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/keyhouse
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# Installed as the package app.migrations: `keyhouse db upgrade` runs them from any directory.
COPY migrations ./migrations
RUN /opt/keyhouse/bin/pip install .

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system keyhouse \
 && useradd --system --gid keyhouse --home-dir /srv/keyhouse --shell /usr/sbin/nologin keyhouse \
 && mkdir -p /srv/keyhouse /var/lib/keyhouse \
 && chown keyhouse:keyhouse /var/lib/keyhouse
COPY --from=build /opt/keyhouse /opt/keyhouse
WORKDIR /srv/keyhouse
ENV PATH=/opt/keyhouse/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KEYHOUSE_ENVIRONMENT=production \
    KEYHOUSE_DATA_DIR=/var/lib/keyhouse \
    KEYHOUSE_LOG_FORMAT=json \
    KEYHOUSE_WORKERS=2
USER keyhouse
EXPOSE 8000
# `keyhouse serve` itself bounds request heads, their time and each worker's connections, with
# or without a proxy in front (KEYHOUSE_MAX_URL_BYTES and the others in docs/reliability.md).
# Liveness only (/healthz never asks the database); a load balancer should use /readyz.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["sh", "-c", "keyhouse db upgrade && exec keyhouse serve --host 0.0.0.0 --port 8000 --workers \"$KEYHOUSE_WORKERS\""]
