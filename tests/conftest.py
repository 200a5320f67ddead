"""Test set-up shared by the whole suite.

- Triton kernels run on the CPU under the interpreter (TRITON_INTERPRET=1) when no GPU is present;
  this must be set before triton is first imported.
- The reference checkers (the PyPI package if-verifiable, with NLTK and langdetect) read NLTK data
  from NLTK_DATA: point it at the copy shipped in hirfast/assets/nltk.
- Tests marked `gpu` are skipped, visibly, without a CUDA GPU; run them with `pytest -m gpu`.
"""
import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ASSETS = REPO / "hirfast" / "assets"


def _has_cuda() -> bool:
    # Avoid importing torch for the checker-only tests: nvidia-smi answers faster.
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


HAS_CUDA = _has_cuda()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("NLTK_DATA", str(ASSETS / "nltk"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def shared_data_dir() -> pathlib.Path:
    """../shared/data beside the repository (present for every developer and in CI)."""
    env = os.environ.get("HIRFAST_SHARED_DATA")
    path = pathlib.Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set HIRFAST_SHARED_DATA", pytrace=False)
    return path


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    return shared_data_dir()


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
