"""MulDimIF constraint checking throughput: hirfast's C++ engine (1 and 2 threads) against the
reference checkers of sastpg/HIR `evaluation/MulDimIF/eval/` (single-threaded Python), over every
(response, constraint) pair of the contract (tests/data/muldimif: 1,200 prompts x 4 responses,
16,720 pairs). MulDimIF has one mode (no loose variant).

The reference is not on PyPI, so it is not copied here either: point HIRFAST_MULDIMIF_REFERENCE at
a clone's `evaluation/MulDimIF/eval` folder (`git clone https://github.com/sastpg/HIR`); its 12
checker modules are imported from there one by one (the folder's `__init__` pulls in pandas and
openai through utils.py, which the checks never use). They need nltk (punkt_tab, read from
hirfast/assets/nltk) and zhconv. Without the variable the reference variant is
skipped, visibly, and the hirfast variants still run.

Run: `HIRFAST_MULDIMIF_REFERENCE=~/HIR/evaluation/MulDimIF/eval python -m pytest
bench/test_muldimif_bench.py --benchmark-only` (or `make bench`).
"""
import gzip
import importlib.util
import json
import os
import pathlib

import pytest

from conftest import data_dir_path, time_check

CLASSES = ["Content_Keywords", "Content_Others", "Content_Punctuation", "Format_Json", "Format_Markdown",
           "Format_Others", "Format_Table", "Language_Chinese", "Language_English", "Length_Paragraphs",
           "Length_Sentences", "Length_Words"]


@pytest.fixture(scope="module")
def batch():
    from hirfast import eval_muldimif, verify

    prompts = {p.key: p for p in eval_muldimif.load_prompts()}
    with gzip.open(data_dir_path() / "muldimif" / "responses.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    responses = [r["response"] for r in rows]
    triples = [prompts[r["id"]].constraints for r in rows]
    ids = [[verify.muldimif_constraint(*c)[0] for c in row] for row in triples]
    kwargs = [[{"text": c[2]} for c in row] for row in triples]
    return responses, ids, kwargs, None, sum(len(i) for i in ids)


@pytest.fixture(scope="module")
def python_reference(batch):
    folder = os.environ.get("HIRFAST_MULDIMIF_REFERENCE")
    if not folder:
        pytest.skip("set HIRFAST_MULDIMIF_REFERENCE to a clone's evaluation/MulDimIF/eval folder "
                    "(sastpg/HIR, not on PyPI) to time the reference")
    nltk = pytest.importorskip("nltk")
    pytest.importorskip("zhconv")
    # Punkt's English parameters, in NLTK's format, ship with hirfast (assets/nltk).
    path = str(pathlib.Path(__file__).resolve().parents[1] / "hirfast" / "assets" / "nltk")
    if path not in nltk.data.path:
        nltk.data.path.append(path)
    checkers = {}
    for name in CLASSES:
        spec = importlib.util.spec_from_file_location(f"muldimif_reference_{name}",
                                                      pathlib.Path(folder) / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        checkers[name] = getattr(module, name)()
    from hirfast import verify

    class_of = _class_mapping()
    assert sorted(class_of) == sorted(verify.muldimif_keys())
    responses, ids, kwargs, _, _ = batch

    def run():
        out = []
        for response, row_ids, row_kwargs in zip(responses, ids, kwargs):
            out.append([bool(checkers[class_of[i.split(":", 1)[1]]].check(kw["text"], response))
                        for i, kw in zip(row_ids, row_kwargs)])
        return out

    return run


def _class_mapping():
    """The reference's class_mapping (key -> checker class), as evaluation.py spells it."""
    groups = {
        "Content_Keywords": ["Content_Keywords", "Content_Keywords: Must include"],
        "Length_Words": ["Length_Words", "Length_Words: At most", "Length_Words: At least", "Length_Words: Range",
                         "Words_At most", "Format_Word Count"],
        "Length_Sentences": ["Length_Sentences", "Length_Sentences: At least", "Length_Sentences: At most",
                             "Length_Sentences: Range", "Sentences_At most", "Sentences_At least"],
        "Length_Paragraphs": ["Length_Paragraphs", "Length_Paragraphs: At most", "Length_Paragraphs: At least",
                              "Length_Paragraphs: Range", "Paragraphs_At most"],
        "Format_Table": ["Format_Table", "Table_Row limit", "Table_Column limit", "Format_Table: Row limit",
                         "Format_Table: Column limit"],
        "Content_Punctuation": ["Punctuation_Ending punctuation", "Content_Punctuation: Ending punctuation",
                                "Content_Punctuation"],
        "Language_English": ["Language_English", "Language_English: Capitalized", "Language_English: All Uppercase"],
        "Format_Markdown": ["Format_Markdown", "Markdown_Heading levels", "Format_Markdown: Heading levels",
                            "Markdown_Block quotes"],
        "Format_Json": ["Json_Object nesting levels", "Format_Json", "Json_Number of attributes"],
        "Language_Chinese": ["Language_Chinese", "Language_Chinese: Simplified", "Language_Chinese: Traditional"],
        "Content_Others": ["Content_Identifiers", "Content_Length", "Citations_In-text", "Content_Quotes",
                           "Content_Sources", "Content_Mention"],
        "Format_Others": ["Format_Markdown: Block quotes", "Format_Text", "XML_Number of attributes",
                          "References_Format", "Format_Bullet Points", "Format_XML", "Format_Blurb", "Table_Table",
                          "Format_Length"],
    }
    return {key: cls for cls, keys in groups.items() for key in keys}


@pytest.mark.parametrize("impl", ["python-reference", "hirfast-1-thread", "hirfast-2-threads"])
def test_muldimif_pairs_per_second(benchmark, batch, request, impl):
    reference = request.getfixturevalue("python_reference") if impl == "python-reference" else None
    benchmark.group = "checker-muldimif"
    time_check(benchmark, batch, impl, "strict", lambda loose: reference(),
               data="tests/data/muldimif/responses.jsonl.gz x hirfast/assets/benchmarks/muldimif_test.json",
               reference="sastpg/HIR evaluation/MulDimIF checkers, single-threaded")
