"""IFBench constraint checking: pairs per second, hirfast (1 and 2 threads) against if-verifiable.

The work of one round: every (response, constraint) pair of the three shared IFBench response
files (3 x 294 prompts, 3 x 335 = 1,005 pairs), checked strict and loose, as
`if_verifiable.common.evaluate_instructions` does for a sample: for each pair, build the checker
from the row's kwargs (nulls dropped), check the response, then the loose candidates until one
passes. The baselines, in one run and in this order:

- ``if_verifiable``: that loop over if-verifiable 0.1.2's IFBench checkers, single-threaded Python,
  as users run it (its `nltk.pos_tag` loads the tagger model on every call, as nltk does); an
  exception inside a check counts as a fail (evaluate_instructions would stop the whole run).
- ``hirfast[threads=1]``, ``hirfast[threads=2]``: `hirfast.verify.check(..., loose=False)` then
  `loose=True` over all rows, with `num_threads` worker threads.

`extra_info` holds `pairs`, `pairs_per_s` (pairs over the round's median time) and, for the hirfast
cases, `speedup_vs_if_verifiable` (median over median, measured earlier in the same run).
"""
from __future__ import annotations

import json
import os
import pathlib

import pytest

import hirfast.verify as verify

REPO = pathlib.Path(__file__).resolve().parents[1]
RESPONSE_SETS = ["llama_3b", "qwen25_7b", "qwen3_4b"]
_MEDIANS: dict[str, float] = {}


def _shared_data() -> pathlib.Path:
    env = os.environ.get("HIRFAST_SHARED_DATA")
    path = pathlib.Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}; set HIRFAST_SHARED_DATA")
    return path


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def workload():
    data = _shared_data() / "ifbench"
    rows = _read_jsonl(data / "IFBench_test.jsonl")
    responses, ids, kwargs, prompts = [], [], [], []
    for name in RESPONSE_SETS:
        for row, answer in zip(rows, _read_jsonl(data / f"input_response_data_{name}.jsonl")):
            assert answer["prompt"] == row["prompt"]
            responses.append(answer["response"])
            ids.append(row["instruction_id_list"])
            kwargs.append(row["kwargs"])
            prompts.append(row["prompt"])
    return responses, ids, kwargs, prompts


def _if_verifiable_round(registry, loose_candidates, responses, ids, kwargs, prompts):
    verdicts = []
    for response, row_ids, row_kwargs in zip(responses, ids, kwargs):
        candidates = loose_candidates(response)
        for iid, kw in zip(row_ids, row_kwargs):
            checker = registry[iid](iid)
            checker.build_description(**{k: v for k, v in kw.items() if v is not None})

            def passes(text):
                try:
                    return bool(text.strip() and checker.check_following(text))
                except Exception:  # noqa: BLE001 - an exception in a check is a fail
                    return False

            verdicts.append((passes(response), any(passes(c) for c in candidates)))
    return verdicts


def _hirfast_round(threads, responses, ids, kwargs, prompts):
    strict = verify.check(responses, ids, kwargs, prompts, loose=False, num_threads=threads)
    loose = verify.check(responses, ids, kwargs, prompts, loose=True, num_threads=threads)
    return strict, loose


@pytest.mark.parametrize("engine", ["if_verifiable", "hirfast[threads=1]", "hirfast[threads=2]"])
def test_ifbench_pairs_per_second(benchmark, workload, engine):
    responses, ids, kwargs, prompts = workload
    pairs = sum(len(r) for r in ids)
    if engine == "if_verifiable":
        nltk = pytest.importorskip("nltk")
        # The tokenizer and stopword data ship with hirfast; the tagger model is read from the
        # shared NLTK data.
        for path in (REPO / "hirfast" / "assets" / "nltk", _shared_data() / "nltk_data"):
            if str(path) not in nltk.data.path:
                nltk.data.path.append(str(path))
        from if_verifiable.common import get_loose_transformations
        from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT

        benchmark.pedantic(_if_verifiable_round,
                           args=(INSTRUCTION_DICT, get_loose_transformations, *workload),
                           rounds=3, warmup_rounds=1, iterations=1)
    else:
        threads = int(engine.split("=")[1].rstrip("]"))
        benchmark.pedantic(_hirfast_round, args=(threads, *workload), rounds=20, warmup_rounds=2,
                           iterations=1)
    median = benchmark.stats.stats.median
    _MEDIANS[engine] = median
    benchmark.extra_info.update({
        "baseline": "if_verifiable 0.1.2 IFBench checkers, single-threaded Python",
        "engine": engine,
        "workload": "IFBench_test x {llama_3b, qwen25_7b, qwen3_4b} responses, strict + loose",
        "rows": len(responses),
        "pairs": pairs,
        "pairs_per_s": pairs / median,
    })
    if engine != "if_verifiable" and "if_verifiable" in _MEDIANS:
        benchmark.extra_info["speedup_vs_if_verifiable"] = _MEDIANS["if_verifiable"] / median
