# Multi-stage image of the service. Not built on the development machine (no Docker engine
# there); it runs the same install command as the README (`make install`, the set-up half of
# `make run`) and is checked by tests/test_container_files.py.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install --yes --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY requirements ./requirements
COPY service ./service
COPY toolkit ./toolkit
RUN make install PYTHON=python3.11

FROM python:3.11-slim AS runtime
RUN groupadd --system ser && useradd --system --gid ser --home-dir /app --shell /usr/sbin/nologin ser
WORKDIR /app
COPY --from=build --chown=ser:ser /app /app
COPY --chown=ser:ser models ./models
USER ser
ENV SER_HOST=0.0.0.0 \
    SER_PORT=8000 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["/app/.venv/bin/python", "-m", "service"]
