"""The contract: hirfast's verdicts equal the reference's on every stable (response, instruction)
pair of the shared IFEval verdict files, strict and loose.

The verdict files were made by the reference checkers (CHECKERS.md); pairs marked
``stable: false`` depend on Python's ``random`` in the reference and are skipped.
"""
import collections
import json

import pytest

from hirfast import verify, verify_cli


def _load(data_dir, bench, inputs_name, responses_name):
    rows = verify_cli.load_inputs(str(data_dir / bench / inputs_name))
    by_prompt = verify_cli.load_responses(str(data_dir / bench / responses_name))
    responses = verify_cli.match_responses(rows, by_prompt, responses_name)
    verdict_path = data_dir / bench / responses_name.replace(".jsonl", ".verdicts.jsonl")
    verdicts = [json.loads(l) for l in open(verdict_path, encoding="utf-8")]
    return rows, responses, verdicts


def agreement(rows, responses, verdicts, threads=1):
    """(compared pairs, list of mismatches) for strict and loose over the stable pairs."""
    scored = verify_cli.score(rows, responses, threads)
    ours = {}
    for row, s, l in zip(scored.rows, scored.strict, scored.loose):
        for j, iid in enumerate(row.instruction_ids):
            ours[(str(row.key), j)] = (iid, s[j], l[j])
    compared, mismatches = 0, []
    for v in verdicts:
        if not v["stable"]:
            continue
        iid, s, l = ours[(str(v["key"]), v["index"])]
        assert iid == v["instruction_id"]
        compared += 1
        if (s, l) != (v["strict"], v["loose"]):
            mismatches.append((v["key"], v["index"], iid, "ours", (s, l), "reference", (v["strict"], v["loose"])))
    return compared, mismatches


IFEVAL_FILES = ["input_response_data_llama_3b.jsonl", "input_response_data_qwen25_7b.jsonl"]


@pytest.mark.parametrize("responses_name", IFEVAL_FILES)
def test_ifeval_verdicts_agree_pair_for_pair(shared_data, responses_name):
    rows, responses, verdicts = _load(shared_data, "ifeval", "input_data.jsonl", responses_name)
    compared, mismatches = agreement(rows, responses, verdicts)
    by_id = collections.Counter(m[2] for m in mismatches)
    assert compared >= 800, compared  # 834 pairs per file, a few unstable
    assert not mismatches, f"{len(mismatches)} of {compared} pairs differ, by id: {dict(by_id)}; first: {mismatches[:3]}"


def test_threads_give_the_same_verdicts(shared_data):
    rows, responses, _ = _load(shared_data, "ifeval", "input_data.jsonl", IFEVAL_FILES[0])
    one = verify_cli.score(rows, responses, 1)
    two = verify_cli.score(rows, responses, 2)
    assert one.strict == two.strict and one.loose == two.loose


def test_every_ifeval_id_is_registered(shared_data):
    rows = verify_cli.load_inputs(str(shared_data / "ifeval" / "input_data.jsonl"))
    used = {i for r in rows for i in r.instruction_ids}
    assert len(used) == 25
    assert used <= set(verify.instruction_ids())
