"""IFBench constraint checking throughput: hirfast's C++ engine (1 and 2 threads) against
if-verifiable's IFBench checkers (single-threaded Python), over every (response, instruction) pair
of the three IFBench response files (3 x 294 prompts, 1,005 pairs), strict and loose.

The Python reference builds each pair's checker from the row's kwargs (nulls dropped) and checks
the response (strict) or the loose candidates until one passes, as the 2025-07 evaluation and
`if_verifiable.common.evaluate_instructions` do; an exception inside a check counts as a fail.
(nltk caches its tagger after the first `pos_tag`, which the warm-up round pays.)
if-verifiable's sentence splitter is the 2025-07 one (see tests/test_ifbench.py for where its
checks differ from 2025-07; the differences do not change the work measured here).

Run: `make bench` or `python -m pytest bench/test_ifbench_bench.py --benchmark-only`.
The summary prints each variant's speed relative to the Python reference measured in the same run.
"""
import pytest

from conftest import load_check_batch, data_dir_path, time_check

FILES = ["input_response_data_llama_3b.jsonl", "input_response_data_qwen25_7b.jsonl",
         "input_response_data_qwen3_4b.jsonl"]


@pytest.fixture(scope="module")
def batch():
    return load_check_batch("ifbench", "IFBench_test.jsonl", FILES)


@pytest.fixture(scope="module")
def python_reference():
    nltk = pytest.importorskip("nltk")
    # Punkt, the stopwords and the tagger model, in NLTK's formats.
    path = str(data_dir_path() / "nltk_data")
    if path not in nltk.data.path:
        nltk.data.path.append(path)
    from if_verifiable.common import get_loose_transformations
    from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT

    def follows(checker, text):
        try:
            return bool(text.strip()) and bool(checker.check_following(text))
        except Exception:  # noqa: BLE001 - the reference harness counts an exception as a fail
            return False

    def run(responses, ids, kwargs, loose):
        out = []
        for response, row_ids, row_kwargs in zip(responses, ids, kwargs):
            candidates = get_loose_transformations(response) if loose else [response]
            row = []
            for iid, kw in zip(row_ids, row_kwargs):
                checker = INSTRUCTION_DICT[iid](iid)
                checker.build_description(**{k: v for k, v in kw.items() if v is not None})
                row.append(any(follows(checker, c) for c in candidates))
            out.append(row)
        return out

    return run


@pytest.mark.parametrize("mode", ["strict", "loose"])
@pytest.mark.parametrize("impl", ["python-reference", "hirfast-1-thread", "hirfast-2-threads"])
def test_ifbench_pairs_per_second(benchmark, batch, python_reference, impl, mode):
    responses, ids, kwargs, _, _ = batch
    benchmark.group = f"checker-ifbench-{mode}"
    time_check(benchmark, batch, impl, mode,
               lambda loose: python_reference(responses, ids, kwargs, loose),
               data="tests/data/ifbench/" + "+".join(FILES),
               reference="if-verifiable 0.1.2 IFBench checkers, single-threaded")
