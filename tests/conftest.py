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


DATA = REPO / "tests" / "data"


def data_dir_path() -> pathlib.Path:
    """The test data shipped in the repository (tests/data, copied from the project's shared data;
    see tests/data/README.md). HIRFAST_TEST_DATA points the suite at another copy."""
    env = os.environ.get("HIRFAST_TEST_DATA") or os.environ.get("HIRFAST_SHARED_DATA")
    path = pathlib.Path(env) if env else DATA
    if not path.is_dir():
        pytest.fail(f"test data not found at {path}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return data_dir_path()


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on one)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
