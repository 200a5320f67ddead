"""Write tests/data/hir16k/sample.jsonl: rows in HIR-16K's schema (sastpg/HIR-16K), one or more of
each source type, made up for the tests (HIR-16K itself is not redistributed here).

Schema, per the dataset card and sastpg/HIR's reader: ``{"messages": [{"role", "content"}],
"criteria": [text, ...], "source": "type1".."type4", "ground_truth": ...}``; type1/type2
``ground_truth`` is ``{"instruction_id_list", "kwargs"}`` (IFEval / IFBench ids), type3 a MulDimIF
constraint list, type4 (from VerIF) ``{"checker": ["[rule] ..." | "[llm] ...", ...],
"functions": [python source | "", ...]}``.

Run from the repository root: python tools/make_hir16k_sample.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hirfast.constraints import render  # noqa: E402

OUT = os.path.join("tests", "data", "hir16k", "sample.jsonl")


def row(key, query, texts, source, gt, style="newline"):
    return {"key": key, "messages": [{"role": "user", "content": render(query, texts, style=style)}],
            "criteria": texts, "source": source, "ground_truth": gt}


def type4(key, query, criteria, style="newline", aligned=True):
    """criteria: [(kind, text, source or None)]."""
    checker = [f"[{k}] {t}" for k, t, _ in criteria]
    if aligned:
        functions = [src or "" for _, _, src in criteria]
    else:
        functions = [src for _, _, src in criteria if src]
    return row(key, query, [t for _, t, _ in criteria], "type4",
               {"checker": checker, "functions": functions}, style)


HAS_OCEAN = "def check_following(response):\n    return 'ocean' in response.lower()\n"
SHORT = "check_following(response):\n    return len(response.split()) < 50\n"  # no leading def
NO_DIGITS = ("import re\n\ndef check_following(response):\n"
             "    return re.search(r'\\d', response) is None\n")
JSON_OBJ = ("import json\n\ndef check_following(response):\n    try:\n"
            "        return isinstance(json.loads(response), dict)\n    except ValueError:\n"
            "        return False\n")

ROWS = [
    row("t1-0", "Write a poem about the sea.", ["Your response should not contain any commas."],
        "type1", {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}),
    row("t2-0", "Describe a market at dawn.", ["Use at least 2 conjunctions."], "type2",
        json.dumps({"instruction_id_list": ["count:conjunctions"], "kwargs": [{"small_n": 2.0}]})),
    row("t3-0", "Summarize the plot of a novel.", ["Answer in three sentences."], "type3",
        {"constraints": [["Length", "Sentences", "Answer in three sentences."]],
         "constraint_pattern": "Incorporation"}),
    type4("t4-rule-0", "Tell me about the sea.",
          [("rule", "Mention the word 'ocean'.", HAS_OCEAN),
           ("rule", "Use fewer than 50 words.", SHORT)]),
    type4("t4-rule-1", "Give me a fact about whales.",
          [("rule", "Do not use any digits.", NO_DIGITS)], style="dashes"),
    type4("t4-llm-0", "Name a fruit you like.",
          [("llm", "The response mentions 'apple'.", None),
           ("llm", "The tone is 'cheerful'.", None)]),
    type4("t4-mix-0", "Describe the sea in one line.",
          [("rule", "Mention the word 'ocean'.", HAS_OCEAN),
           ("llm", "The response mentions 'blue'.", None)], style="rules"),
    type4("t4-mix-1", "Return a JSON object about the sea.",
          [("rule", "The response is a JSON object.", JSON_OBJ),
           ("llm", "The object mentions 'ocean'.", None)], aligned=False),
]

if __name__ == "__main__":
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        for r in ROWS:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(ROWS)} rows to {OUT}")
