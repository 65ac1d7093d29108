# instrumentgen — the two commands a newcomer needs: `make demo` and `make test`.
# Both run `make setup` first (creates .venv with the pinned dependencies; a no-op when done).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# laion_clap and transformers try to reach a model hub at import time and hang without a
# network: the offline profiles and the tests never need one.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PROFILE ?= tiny

.PHONY: setup system-deps browser-deps slurm-deps demo test test-fast run lint bench bench-demo bench-encoders bench-train bench-generate lock clean-venv

setup: $(STAMP) system-deps

# Debian packages, installed with apt-get when their command is missing (as root, e.g. CI on a bare
# machine). FluidSynth renders the exported instruments' demos (and the export tests run it); Chromium
# and its WebDriver open the companion page in the browser tests, Slurm and munge run the Slurm
# profile's test cluster (`make test` only).
# $(call apt_install,COMMAND:PACKAGE ...)
define apt_install
	@missing=""; for dep in $(1); do command -v $${dep%%:*} >/dev/null || case " $$missing " in \
	  *" $${dep#*:} "*) ;; *) missing="$$missing $${dep#*:}";; esac; done; \
	[ -z "$$missing" ] && exit 0; \
	echo "not found:$$missing; installing the Debian packages"; \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; } \
	|| { echo "error: could not install$$missing (needs root and apt-get); install them yourself" \
	       "(Debian/Ubuntu: sudo apt-get install$$missing; macOS: brew install fluid-synth chromium" \
	       "chromedriver) and rerun make"; exit 1; }
endef

system-deps:
	$(call apt_install,fluidsynth:fluidsynth)

browser-deps:
	$(call apt_install,chromium:chromium chromedriver:chromium-driver)

slurm-deps:
	$(call apt_install,slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install CPython 3.11 or pass PYTHON=..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# The offline demo: the tiny profile end to end (no GPU, no network), then its Snakemake report
# (tables, figures, captions) as results/tiny/report.html.
demo: setup
	$(OFFLINE) $(BIN)/snakemake --profile workflow/profiles/tiny
	$(OFFLINE) $(BIN)/snakemake --profile workflow/profiles/tiny --report results/tiny/report.html

# Any profile: `make run PROFILE=ci` (paper: `make run PROFILE=paper`, needs GPU + internet). A profile
# without params.yaml only says how to run (slurm: the paper parameters on a Slurm cluster), so its
# results and report are the paper's.
PARAMS_PROFILE = $(if $(wildcard workflow/profiles/$(PROFILE)/params.yaml),$(PROFILE),paper)
run: setup
	@test -f workflow/profiles/$(PROFILE)/config.yaml || { echo "error: unknown profile '$(PROFILE)'; known: $$(ls workflow/profiles | tr '\n' ' ')"; exit 1; }
	$(if $(filter paper,$(PARAMS_PROFILE)),,$(OFFLINE)) $(BIN)/snakemake --profile workflow/profiles/$(PROFILE)
	$(if $(filter paper,$(PARAMS_PROFILE)),,$(OFFLINE)) $(BIN)/snakemake --profile workflow/profiles/$(PROFILE) \
	  --report results/$(PARAMS_PROFILE)/report.html

test: setup browser-deps slurm-deps
	$(OFFLINE) $(BIN)/python -m pytest -q

# The inner loop (under 2 minutes on a 2-core CPU): every test but the Snakemake runs (e2e), the browser and
# Slurm tests and those marked slow (pyproject.toml's markers); stops at the first failure.
FAST_TESTS := not e2e and not browser and not slurm and not slow
test-fast: setup
	$(OFFLINE) $(BIN)/python -m pytest -q -x -m "$(FAST_TESTS)"

lint: setup
	$(BIN)/ruff check .
	$(OFFLINE) $(BIN)/snakemake --lint

bench: setup
	$(OFFLINE) $(BIN)/python benchmarks/data_phase.py

# `make demo` from scratch (whole tiny DAG + report): wall time, peak RSS, phase times
# → benchmarks/results/demo_tiny.json (targets: <= 15 min, <= 4 GB on a 2-core machine).
bench-demo: setup
	$(OFFLINE) $(BIN)/python benchmarks/demo.py

bench-encoders: setup
	$(OFFLINE) $(BIN)/python benchmarks/encoders.py

# Codec-LM training steps/s and peak memory (paper and tiny size) on this machine's CPU;
# on a GPU: `python benchmarks/training.py --device cuda`.
bench-train: setup
	$(OFFLINE) $(BIN)/python benchmarks/training.py

# Generation speed: AR decoding vs transformers' MusicGen and MAGNeT vs AR (paper size), one tiny
# instrument (needs `make demo`'s models); on a GPU: `python benchmarks/generation.py --device cuda`.
bench-generate: setup
	$(OFFLINE) $(BIN)/python benchmarks/generation.py

# Re-pin the whole dependency tree from pyproject.toml (needs the package registry).
lock:
	rm -rf /tmp/instrumentgen-lock && $(PYTHON) -m venv /tmp/instrumentgen-lock
	/tmp/instrumentgen-lock/bin/pip install --quiet -e .[dev]
	{ head -n 2 requirements.lock; /tmp/instrumentgen-lock/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean-venv:
	rm -rf $(VENV)
