# syntax=docker/dockerfile:1
# The exporter's image. docker-compose.yml builds it as tradeops-exporter:local
# and also runs the stack's FIX acceptor, simulators and notification stand-ins
# from it (python -m stack.compose ...), so the compose stack needs one image:
#
#   docker build -t tradeops-exporter .
#   docker run -p 9713:9713 -v "$PWD/config.yml:/etc/tradeops/exporter.yml:ro" tradeops-exporter
#
# The build context is only what is copied below (.dockerignore lets nothing else in).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The stack's FIX counterparty (QuickFIX; compiled, several minutes), in a layer of its own.
RUN pip install quickfix==1.16.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
# Editable: the package is imported from /app/exporter, so exporter/version.py
# finds rules/VERSION beside it (the bundle version of tradeops_exporter_build_info).
RUN pip install -e .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# pg_dump, pg_restore and psql (PostgreSQL 15) for the compose stack's backups.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
# A user of its own; the directories the compose volumes are mounted on belong to
# it, so a new volume starts with its ownership.
RUN groupadd --system --gid 10001 tradeops \
 && useradd --system --uid 10001 --gid tradeops --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin tradeops \
 && install -d -o tradeops -g tradeops /var/lib/tradeops/fix /var/lib/tradeops/backups \
      /var/lib/tradeops/drills /var/lib/tradeops/alertmanager
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY exporter/ exporter/
COPY stack/ stack/
COPY bundle/__init__.py bundle/contract.py bundle/drill.py bundle/routes.py bundle/
COPY rules/VERSION rules/VERSION
USER 10001:10001
EXPOSE 9713
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9713/-/healthy', timeout=3)"]
CMD ["python", "-m", "exporter", "--config", "/etc/tradeops/exporter.yml", "--listen", "0.0.0.0:9713"]
