"""The demo in its reduced setting (--quick): outputs exist and are well-formed."""
import argparse
import json
import os

import pytest

from hirfast import verify
from hirfast.demo import ARMS, add_arguments, main, report, summarize
from hirfast.demo_model import DEMO_IDS


def test_quick_demo_writes_summary_and_curves(tmp_path, capsys):
    if sum(i in set(verify.instruction_ids()) for i in DEMO_IDS) < 3:
        pytest.skip("the checker knows fewer than 3 of the demo's constraint ids so far")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "demo"
    assert main(parser.parse_args(["--quick", "--seeds", "2", "--workers", "1",
                                   "--out", str(out)])) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"seeds", "rollouts_per_arm", "arms"}
    assert summary["seeds"] == [0, 1]
    assert summary["rollouts_per_arm"] == 4 * 2 * 3
    assert set(summary["arms"]) == set(ARMS)
    for arm in ARMS:
        a = summary["arms"][arm]
        assert set(a) == {"ila_final", "cla_final", "curve"}
        assert len(a["ila_final"]) == len(a["cla_final"]) == 2
        assert all(0 <= x <= 1 for x in a["ila_final"] + a["cla_final"])
        assert [p[0] for p in a["curve"]] == [0, 12, 24]
        assert all(isinstance(p[0], int) and 0 <= p[1] <= 1 for p in a["curve"])
    # Both arms start from the same warm start and are evaluated with the same seeds.
    assert summary["arms"]["hir"]["curve"][0] == summary["arms"]["baseline"]["curve"][0]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for arm in ARMS:
        assert os.path.exists(out / "runs" / f"{arm}-seed1" / "metrics.jsonl")
    printed = capsys.readouterr().out
    assert "held-out ILA" in printed and "verdict:" in printed


def _result(arm, seed, ilas):
    return {"arm": arm, "seed": seed,
            "curve": [[i * 10, ila, 0.5] for i, ila in enumerate(ilas)]}


def test_report_states_a_loss_for_replay_plainly():
    results = [_result("hir", 0, [0.0, 0.1, 0.2]), _result("baseline", 0, [0.0, 0.2, 0.3]),
               _result("hir", 1, [0.0, 0.1, 0.1]), _result("baseline", 1, [0.0, 0.3, 0.3])]
    summary = summarize(results, [0, 1], 20)
    assert summary["arms"]["hir"]["curve"] == [[0, 0.0], [10, 0.1], [20, 0.15000000000000002]]
    text = report(summary)
    assert "does NOT beat" in text
    assert "not reached" in text


def test_report_counts_rollouts_to_the_baselines_final_ila():
    results = [_result("hir", 0, [0.0, 0.3, 0.4]), _result("baseline", 0, [0.0, 0.1, 0.25])]
    text = report(summarize(results, [0], 20))
    assert "replay wins on every seed (1/1)" in text
    assert "after 10 of 20 rollouts (50%)" in text


def test_report_when_the_baseline_never_succeeds():
    results = [_result("hir", 0, [0.0, 0.1, 0.2]), _result("baseline", 0, [0.0, 0.0, 0.0])]
    text = report(summarize(results, [0], 20))
    assert "the baseline's final ILA is 0" in text
    assert "replay wins on every seed (1/1): final held-out ILA 0.200 vs 0.000" in text
