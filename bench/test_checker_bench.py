"""Constraint checking throughput: hirfast's C++ engine (1 and 2 threads) against the Python
reference checkers (the PyPI package if-verifiable, as patched in tests/reference.py), over every
(response, instruction) pair of the IFEval response files, strict and loose.

Run: `make bench` or `python -m pytest bench/test_checker_bench.py --benchmark-only`.
The summary prints each variant's speed relative to the Python reference measured in the same run.
"""
import os
import sys

import pytest

from conftest import load_check_batch, time_check

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import reference  # noqa: E402

FILES = ["input_response_data_llama_3b.jsonl", "input_response_data_qwen25_7b.jsonl"]


@pytest.fixture(scope="module")
def batch():
    return load_check_batch("ifeval", "input_data.jsonl", FILES)


def _python_reference(responses, ids, kwargs, prompts, loose):
    out = []
    for response, row_ids, row_kwargs, prompt in zip(responses, ids, kwargs, prompts):
        out.append([reference.verdict(i, k, response, prompt, loose) for i, k in zip(row_ids, row_kwargs)])
    return out


@pytest.mark.parametrize("mode", ["strict", "loose"])
@pytest.mark.parametrize("impl", ["python-reference", "hirfast-1-thread", "hirfast-2-threads"])
def test_ifeval_pairs_per_second(benchmark, batch, impl, mode):
    responses, ids, kwargs, prompts, _ = batch
    benchmark.group = f"checker-ifeval-{mode}"
    time_check(benchmark, batch, impl, mode,
               lambda loose: _python_reference(responses, ids, kwargs, prompts, loose),
               data="tests/data/ifeval/" + "+".join(FILES),
               reference="if-verifiable 0.1.2 IFEval checkers as patched in tests/reference.py, single-threaded")
