# Edge-deployment pipeline. `make demo` and `make test` set up everything they need.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
CONFIG ?= configs/demo.toml
RUN ?= demo
DEVICE ?= local
NIGHTLY_CONFIG ?= configs/nightly.toml
SWEEP_CONFIG ?= configs/sweep.toml
SEARCH_CONFIG ?= configs/search.toml
USER_VARIABLES := CONFIG RUN DEVICE MODEL SAMPLES NIGHTLY_CONFIG SWEEP_CONFIG COUNT NIGHTS PIPELINE \
                  SEARCH_CONFIG LATENCY_MS LATENCY_RATIO MAX_BYTES TRIALS WORKERS
DEBIAN_PACKAGES := dataset-fashion-mnist openssh-server postgresql

export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

# Values from the command line are text, never make code or shell code: each is frozen as written (make
# would otherwise expand a $(shell ...) inside it, even just to export it) and reaches the shell as one
# single-quoted word ('\'' inside). RUN='x; rm -rf ~' is a (refused) run name, nothing else.
$(foreach v,$(USER_VARIABLES),$(eval override $(v) := $$(value $(v))))
quote = '$(subst ','\'',$(1))'

# CI runs the slow end-to-end tests too; a developer's `make test` stays lean.
PYTEST_MARKERS := $(if $(CI),-m "slow or not slow",)

.PHONY: .debian-packages help setup demo lint test test-all calibration bench-pipeline label-table clean \
        $(foreach s,data pretrain finetune distill slim prune cluster quantize convert,stage-$(s))

help:
	@echo "make demo            train, compress and convert the demo model (configs/demo.toml)"
	@echo "make lint            ruff and mypy on the code (configured in pyproject.toml)"
	@echo "make test            lint, then run the test suite (CI=true adds the slow end-to-end tests)"
	@echo "make test-all        run every test, slow ones included"
	@echo "make stage-<name>    run up to one stage: data pretrain finetune distill slim prune cluster quantize convert"
	@echo "make calibration     regenerate calibration_data/ byte-identically"
	@echo "make bench-pipeline  per-stage wall time, throughput and FLOP/s vs this machine's fp32 matmul, float vs int8 latency, data stage"
	@echo "make label-table     SSL vs from-scratch accuracy at 1%, 10% and 25% of the labels (README table)"
	@echo "make sweep           train, benchmark and compare every compression variant (configs/sweep.toml)"
	@echo "make search          search the compression recipes for DEVICE (LATENCY_MS, MAX_BYTES, TRIALS)"

setup: $(VENV)/.installed .debian-packages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt
	touch $@

.debian-packages: scripts/install-debian-packages.sh
	scripts/install-debian-packages.sh $(DEBIAN_PACKAGES)

# Second environment for the device agent's tests: tflite-runtime 2.14 + numpy 1.x, what Raspberry Pi OS
# users install (it crashes under numpy 2). Only the agent runs in it.
.venv-tflite214/.installed: requirements-tflite214.txt
	$(PYTHON) -m venv .venv-tflite214
	.venv-tflite214/bin/python -m pip install -q -r requirements-tflite214.txt
	touch $@

demo: setup
	$(VPY) -m pipeline run --config $(call quote,$(CONFIG))

# A static pattern rule: make skips implicit (%) rules for .PHONY targets, so a plain `stage-%:` never ran.
$(foreach s,data pretrain finetune distill slim prune cluster quantize convert,stage-$(s)): stage-%: setup
	$(VPY) -m pipeline $(call quote,$*) --config $(call quote,$(CONFIG))

# ruff on the code and its tests; mypy on the packages (pyproject.toml says which untyped libraries are Any).
LINT_PACKAGES := pipeline device_agents models
lint: setup
	$(VPY) -m ruff check $(LINT_PACKAGES) tests
	$(VPY) -m mypy $(LINT_PACKAGES)

# Lint first: a tree that does not pass lint does not get to the (minutes-long) tests.
test: lint .venv-tflite214/.installed
	$(VPY) -m pytest $(PYTEST_MARKERS)

test-all: setup .venv-tflite214/.installed
	$(VPY) -m pytest -m "slow or not slow"

calibration: setup
	$(VPY) -m pipeline calibration

bench-pipeline: setup
	$(VPY) -m pipeline bench-pipeline --config $(call quote,$(CONFIG))

# Trains each label-fraction config up to fine-tuning; the three share one pretraining (stage reuse).
label-table: setup
	$(VPY) -m pipeline label-table

# Compression sweep (docs/sweep.md): every run of SWEEP_CONFIG (sharing cached stages with `make demo`), every
# variant benchmarked on the config's devices, recorded in the results store, compared in reports/sweep-<date>/.
.PHONY: sweep
sweep: setup
	$(VPY) -m pipeline sweep --config $(call quote,$(SWEEP_CONFIG))

# Model search (docs/search.md): an Optuna study over the compression recipes, each trial timed on DEVICE
# interleaved against ptq_int8; the constraints and counts are optional, the config's values otherwise.
.PHONY: search
search: setup
	$(VPY) -m pipeline search --config $(call quote,$(SEARCH_CONFIG)) --device $(call quote,$(DEVICE)) \
		$(if $(LATENCY_MS),--latency-ms $(call quote,$(LATENCY_MS))) \
		$(if $(LATENCY_RATIO),--latency-ratio $(call quote,$(LATENCY_RATIO))) \
		$(if $(MAX_BYTES),--max-bytes $(call quote,$(MAX_BYTES))) \
		$(if $(TRIALS),--trials $(call quote,$(TRIALS))) $(if $(WORKERS),--workers $(call quote,$(WORKERS)))

clean:
	rm -rf build

# Coral Edge TPU. MODEL=path/to/model.tflite (default: build/demo's compressed variant, from its manifest).
.PHONY: edgetpu-check edgetpu-compile
edgetpu-check: setup
	$(VPY) -m pipeline edgetpu-check $(call quote,$(MODEL))

edgetpu-compile: setup
	$(VPY) -m pipeline edgetpu-compile $(call quote,$(MODEL))

# Results store: insert/query throughput for COUNT results with raw samples, SQLite vs PostgreSQL (minutes).
.PHONY: bench-results
bench-results: setup
	$(VPY) -m pipeline bench-results --count $(call quote,$(or $(COUNT),100000))

# Devices (devices.toml, docs/devices.md): DEVICE=<name> (default local); DEVICES=file for another inventory;
# MODEL=path SAMPLES=path instead of build/$(RUN)'s int8 model.
DEVICE_PROFILES := local rpi4 rpi5 coral-usb coral-devboard
DEVICE_MODEL_ARGS = --run $(call quote,$(RUN)) $(if $(MODEL),--model $(call quote,$(MODEL))) \
                    $(if $(SAMPLES),--samples $(call quote,$(SAMPLES)))
.PHONY: bench deploy bench-agent $(addprefix bench-,$(DEVICE_PROFILES))
bench: setup
	$(VPY) -m pipeline bench --device $(call quote,$(DEVICE)) $(DEVICE_MODEL_ARGS)

deploy: setup
	$(VPY) -m pipeline deploy --device $(call quote,$(DEVICE)) $(DEVICE_MODEL_ARGS)

$(addprefix bench-,$(DEVICE_PROFILES)): bench-%: setup
	$(VPY) -m pipeline bench --device $* $(DEVICE_MODEL_ARGS)

# Agent vs benchmark_litert_model.py latency, and the SSH uploader vs scp for 50 MB on loopback.
bench-agent: setup
	$(VPY) -m pipeline bench-agent $(DEVICE_MODEL_ARGS)

# Nightly (docs/nightly.md): train, benchmark every variant on every device, record, check, report under reports/.
# `python -m pipeline nightly` exits 0 no model regression, 1 model regression, 2 no verdict (bad input, pipeline or
# every device failed, store error); make turns any failure into 2, so the verdict is printed as the last line here.
# CI should call the Python entry point.
.PHONY: nightly
nightly: setup
	@out=$$(mktemp); status=0; \
	$(VPY) -m pipeline nightly --config $(call quote,$(NIGHTLY_CONFIG)) > $$out || status=$$?; \
	cat $$out; verdict=$$(head -n 1 $$out); rm -f $$out; \
	echo "nightly exit $$status: $${verdict:-no verdict (see the error above)}"; exit $$status

# Nightly gate: NIGHTS unchanged nightlies in a row into a fresh store (any model regression is a false alarm).
.PHONY: bench-nightly-noise
bench-nightly-noise: setup
	$(VPY) -m pipeline bench-nightly-noise --nights $(call quote,$(or $(NIGHTS),10)) \
		--pipeline $(call quote,$(or $(PIPELINE),configs/tiny.toml)) --out build/bench-nightly-noise-$$(date +%Y%m%d-%H%M%S)
