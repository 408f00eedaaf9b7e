# The hotline's image: one image for every process (web, worker, `hotline` commands), run as
# a non-root user. No setting and no secret is in it: they come from the environment at run
# time (compose.yaml's env file; docs/operations.md, "From an empty server to a working number").
# PYTHON_IMAGE lets a machine without Docker Hub build on a local Python 3.11 image instead.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: a virtual environment with the hotline and the PostgreSQL driver, no test tools.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/hotline
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hotline ./hotline
COPY workers ./workers
COPY ivr_flows ./ivr_flows
RUN /opt/hotline/bin/pip install ".[postgres]"

# Run stage: the virtual environment, gunicorn's settings, nothing else of the checkout.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin hotline
COPY --from=build /opt/hotline /opt/hotline
WORKDIR /app
COPY config/gunicorn.conf.py ./config/gunicorn.conf.py
COPY Procfile ./
ENV PATH=/opt/hotline/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOTLINE_ENV=production \
    PORT=5000
USER hotline:hotline
EXPOSE 5000
# /healthz answers without the database or Redis (docs/operations.md): a store outage does not
# mark every container unhealthy. The slim image has no curl; Python's urllib is there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '5000'), timeout=4)"]
# The Procfile's web line; compose.yaml runs `hotline worker` and `hotline db upgrade` instead.
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "hotline:create_app()"]
