"""TrainConfig, and HiRTrainer end to end on the CPU with a tiny model: metrics, checkpoints,
resume, replay rows, KL and mini-batch paths, the plot."""
import json
import math
import os
import random

import pytest
import torch

from hirfast import verify
from hirfast.config import TrainConfig, add_config_arguments, config_from_args, load_config
from hirfast.constraints import Constraint, Task
from hirfast.demo_model import build_model, build_tokenizer, demo_tasks, sample_response
from hirfast.trainer import HiRTrainer, latest_checkpoint, main

TIMING = ("time_", "tokens_per_s_")


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models are overhead-bound: one thread is as fast and immune to a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tasks(n, seed):
    """Demo tasks restricted to the ids the engine knows (one constraint at least)."""
    known = verify.instruction_ids()
    tasks = [Task(t.query, tuple(c for c in t.constraints if c.instruction_id in known) or
                  (Constraint.from_spec("punctuation:no_comma", {}),), key=t.key)
             for t in demo_tasks(n, seed=seed)]
    return tasks


@pytest.fixture(scope="module")
def world():
    tasks, held = _tasks(24, seed=1), _tasks(4, seed=2)
    rng = random.Random(0)
    corpus = [sample_response(rng, t, 0.5) for t in demo_tasks(50, seed=3)]
    tokenizer = build_tokenizer(corpus + [t.instruction() for t in tasks + held]
                                + ["<|user|>\n<|end|>\n<|assistant|>\n"])
    return tokenizer, tasks, held


def _config(tmp_path, **kw):
    # device="cpu": on a GPU machine "auto" would make every test here a CUDA run, where bitwise
    # comparisons (resume, checkpoints) do not hold; the `gpu` tests below are their GPU twins.
    base = dict(model="tiny", out=str(tmp_path / "run"), steps=3, tasks_per_step=2,
                rollouts_per_task=3, max_new_tokens=10, lr=1e-3, progress=False, seed=5,
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _trainer(world, cfg, **kw):
    tokenizer, tasks, held = world
    return HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32), tokenizer=tokenizer,
                      tasks=tasks, eval_tasks=held, **kw)


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


# --- config -------------------------------------------------------------------------------------

def test_config_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: m\nsteps: 7\nreplay: off\nlr: 2.0e-5\n", encoding="utf-8")
    cfg = load_config(str(path), {"steps": "9", "advantage": "grpo"})
    assert (cfg.model, cfg.steps, cfg.replay, cfg.lr, cfg.advantage) == ("m", 9, False, 2e-5, "grpo")
    assert cfg.rollouts_per_task == 6 and cfg.replay_k == 2 and cfg.replay_lambda0 == 2.0


@pytest.mark.parametrize("text,overrides,message", [
    ("stepz: 3\n", {}, "unknown setting"),
    ("steps: many\n", {}, "steps: expected int"),
    ("steps: 2.5\n", {}, "steps: expected int"),
    ("replay: maybe\n", {}, "replay: expected true/false"),
    ("- a\n", {}, "expected a mapping"),
    ("", {"advantage": "ppo"}, "advantage = 'ppo'"),
    ("", {"rollouts_per_task": 0}, "rollouts_per_task = 0"),
    ("", {"top_p": 0}, "top_p"),
])
def test_config_errors_name_the_setting(tmp_path, text, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_config(str(path), overrides).validate()


def test_every_setting_is_documented_and_a_flag():
    import argparse
    import dataclasses

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--steps", "4", "--max-new-tokens", "8", "--max_prompt_tokens", "99",
                              "--replay", "false", "--strict-data", "--model", "x"])
    cfg = config_from_args(args)
    assert (cfg.steps, cfg.max_new_tokens, cfg.max_prompt_tokens, cfg.replay, cfg.strict_data) == \
        (4, 8, 99, False, True)
    for f in dataclasses.fields(TrainConfig):
        assert len(f.metadata["help"]) > 10, f.name


# --- training -----------------------------------------------------------------------------------

def test_few_steps_train_writes_metrics_and_loadable_checkpoints(world, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = _config(tmp_path, save_every=2, keep_checkpoints=2, eval_every=2, eval_tasks=4)
    trainer = _trainer(world, cfg)
    trainer.train()
    rows = _read(os.path.join(cfg.out, "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["rollouts"] for r in rows] == [6, 12, 18]
    for key in ("ila", "cla", "replay_count", "replay_ratio", "lambda", "zero_reward_groups",
                "response_length", "entropy", "clip_fraction", "grad_norm", "loss", "lr",
                "tokens_per_s_rollout", "tokens_per_s_verify", "tokens_per_s_replay",
                "tokens_per_s_train"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert rows[0]["lambda"] == 2.0 and rows[2]["lambda"] == pytest.approx(2.0 * 1.05 ** 2)
    assert rows[0]["kl"] is None
    assert "eval_ila" in rows[1] and "eval_ila" in rows[2] and "eval_ila" not in rows[0]
    ckpts = sorted(os.listdir(os.path.join(cfg.out, "checkpoints")))
    assert ckpts == ["step-00000002", "step-00000003"]
    path = latest_checkpoint(cfg.out)
    assert path.endswith("step-00000003")
    loaded = AutoModelForCausalLM.from_pretrained(path)
    for (name, a), b in zip(trainer.model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert AutoTokenizer.from_pretrained(path).chat_template == world[0].chat_template
    assert os.path.exists(os.path.join(cfg.out, "config.yaml"))


class _Killed(Exception):
    pass


def test_resume_reproduces_an_uninterrupted_run(world, tmp_path):
    straight = _config(tmp_path / "a", steps=4, save_every=2)
    _trainer(world, straight).train()

    calls = {"n": 0}

    def dies_in_step_4(*args, **kw):
        calls["n"] += len(args[0]) == 6  # the step's 2 x 3 rollouts (re-checks of replays are fewer)
        if calls["n"] == 4:
            raise _Killed
        return verify.check(*args, **kw)

    broken = _config(tmp_path / "b", steps=4, save_every=2)
    with pytest.raises(_Killed):
        _trainer(world, broken, verifier=dies_in_step_4).train()
    assert len(_read(os.path.join(broken.out, "metrics.jsonl"))) == 3  # step 3 logged, not saved
    # A half-written checkpoint from the crash must be ignored.
    os.makedirs(os.path.join(broken.out, "checkpoints", ".tmp-step-00000004-1"))
    resumed = _config(tmp_path / "b", steps=4, save_every=2, resume=True)
    _trainer(world, resumed).train()
    a = _strip_timing(_read(os.path.join(straight.out, "metrics.jsonl")))
    b = _strip_timing(_read(os.path.join(resumed.out, "metrics.jsonl")))
    assert a == b


def _partial_verifier(responses, ids, kwargs, prompts=None, **kw):
    # Constraint 0 always holds, the others never: every response is a failure worth replaying.
    return [[j == 0 for j in range(len(row))] for row in ids]


def _two_constraint_tasks(n):
    cons = (Constraint.from_spec("punctuation:no_comma", {}),
            Constraint.from_spec("detectable_format:title", {}))
    return [Task(f"Describe the river {i}.", cons, key=str(i)) for i in range(n)]


@pytest.mark.parametrize("replay", [True, False])
def test_replays_join_the_batch_only_with_replay_on(world, tmp_path, replay):
    tokenizer = world[0]
    cfg = _config(tmp_path, steps=2, replay=replay, replay_k=2)
    trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32),
                         tokenizer=tokenizer, tasks=_two_constraint_tasks(4),
                         verifier=_partial_verifier)
    rows = trainer.train()
    # Responses with no token (an immediate end token is still a token) are never replayed.
    assert [r["replay_count"] for r in rows] == ([4, 4] if replay else [0, 0])
    assert all(r["ila"] == 0 and r["cla"] == 0.5 for r in rows)
    rewritten = _two_constraint_tasks(1)[0].rewritten([True, False]).instruction()
    assert (rewritten in trainer._prompt_cache) == replay  # replays were tokenized under x'


def test_kl_reference_and_mini_batches_run(world, tmp_path):
    cfg = _config(tmp_path, steps=2, kl_coef=0.01, kl_loss_coef=0.1, mini_batches=2,
                  advantage="grpo", loss_agg="seq-mean-token-mean", replay_importance=True,
                  replay_old_logprobs="rewritten")
    rows = _trainer(world, cfg).train()
    assert all(r["kl"] is not None and math.isfinite(r["kl"]) and r["kl"] >= 0 for r in rows)
    # The policy starts as its reference; only the second mini-batch sees an updated policy.
    assert rows[0]["kl"] < 1e-3
    assert all(math.isfinite(r["loss"]) for r in rows)


def test_plot_draws_the_run(world, tmp_path):
    from hirfast.plot import plot_run

    cfg = _config(tmp_path, steps=2)
    _trainer(world, cfg).train()
    png = plot_run(cfg.out)
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_main_reports_a_bad_model_path(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert main(args) == 2
    assert "hirfast train:" in capsys.readouterr().err


def test_cpu_pins_are_the_defaults_of_these_tests(world, tmp_path):
    trainer = _trainer(world, _config(tmp_path))
    assert trainer.device.type == "cpu" and not trainer.autocast
    assert not trainer.model.is_gradient_checkpointing


@pytest.mark.gpu
def test_bf16_and_checkpointing_on_gpu(world, tmp_path):
    # The trainer's GPU defaults: bf16 autocast over fp32 weights, gradient checkpointing, packed
    # attention with "auto" (a varlen kernel), the CUDA-graph rollout; then its checkpoint loads.
    from transformers import AutoModelForCausalLM

    cfg = _config(tmp_path, steps=2, device="cuda", save_every=2)
    trainer = _trainer(world, cfg)
    assert trainer.autocast and trainer.model.is_gradient_checkpointing
    assert trainer.infer_model.dtype == torch.bfloat16  # rollout copy; the optimizer keeps fp32
    own_attention = trainer.model.config._attn_implementation
    rows = trainer.train()
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in rows)
    assert trainer.model.config._attn_implementation == own_attention  # restored after each pass
    loaded = AutoModelForCausalLM.from_pretrained(latest_checkpoint(cfg.out))
    for (name, a), b in zip(trainer.model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a.cpu(), b), name


@pytest.mark.gpu
def test_resume_on_gpu_restores_the_state(world, tmp_path):
    # CUDA atomics make GPU runs differ in the last bits, so sampled rollouts (and metrics) of a
    # resumed run may part from an uninterrupted one; the restored state itself must be exact.
    cfg = _config(tmp_path, steps=2, save_every=2, device="cuda")
    first = _trainer(world, cfg)
    first.train()
    resumed = _trainer(world, _config(tmp_path, steps=3, save_every=2, device="cuda", resume=True))
    assert resumed.load_checkpoint()
    assert (resumed.step_index, resumed.rollouts) == (first.step_index, first.rollouts)
    assert resumed.sampler.state_dict() == first.sampler.state_dict()
    for a, b in zip(first.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(resumed.model.parameters(), resumed.infer_model.parameters()):
        assert torch.equal(a.to(b.dtype), b)  # the bf16 rollout copy follows the restored weights
    rows = resumed.train()
    assert [r["step"] for r in rows] == [3] and math.isfinite(rows[0]["loss"])


def test_plot_command_reports_a_missing_run(tmp_path, capsys):
    import argparse

    from hirfast import plot

    parser = argparse.ArgumentParser()
    plot.add_arguments(parser)
    assert plot.main(parser.parse_args([str(tmp_path / "nothing")])) == 2
    assert "hirfast plot:" in capsys.readouterr().err


def test_bf16_on_a_cpu_is_refused(world, tmp_path):
    with pytest.raises(ValueError, match="bf16 = on needs a CUDA device"):
        _trainer(world, _config(tmp_path, bf16="on", device="cpu"))


def test_learning_rate_warms_up_linearly_then_decays_by_cosine():
    from hirfast.trainer import _warmup_cosine

    f = _warmup_cosine(warmup=4, total=14, schedule="cosine", min_ratio=0.1)
    assert [f(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay
    assert f(14) == pytest.approx(0.1) and f(20) == pytest.approx(0.1)
    assert _warmup_cosine(0, 10, "constant", 0.0)(7) == 1.0


# --- HiR as published: selection, replay log-probs, re-check, truncation, reference, dropout ------

def _partial_trainer(tmp_path, world, verifier=_partial_verifier, tasks=4, **kw):
    tokenizer = world[0]
    cfg = _config(tmp_path, **{"steps": 1, **kw})
    return HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32), tokenizer=tokenizer,
                      tasks=_two_constraint_tasks(tasks), verifier=verifier)


def test_published_selection_takes_num_replay_from_the_whole_batch(world, tmp_path):
    # Every response meets 1 of 2 constraints: all non-empty ones are candidates (CLA 1/2).
    row = _partial_trainer(tmp_path / "a", world).train()[0]
    assert row["replay_candidates"] == 6  # a response always has a token here
    assert row["replay_count"] == 4  # replay_k x tasks_per_step = 2 x 2
    row = _partial_trainer(tmp_path / "b", world, num_replay=5).train()[0]
    assert row["replay_count"] == 5
    row = _partial_trainer(tmp_path / "c", world, num_replay=5, replay_max_per_task=1).train()[0]
    assert row["replay_count"] == 2
    with pytest.raises(ValueError, match="num_replay"):
        TrainConfig(model="m", num_replay=-1).validate()


def _row(prompt, response, lp, replay=False, source=None, group=0):
    from hirfast.trainer import _Row
    return _Row(prompt, response, 1.0 if replay else 0.0, group, replay, torch.tensor(lp),
                source=source)


def test_replays_carry_the_original_instructions_pi_old_and_pi_ref(world, tmp_path):
    # A hand-built batch: one original (prompt x) and its replay (prompt x', same response).
    from functools import partial

    from hirfast.rl_loss import row_logprobs

    trainer = _partial_trainer(tmp_path, world, kl_coef=0.01)
    x, x2, y = [1, 2, 3, 4, 5, 6], [1, 2, 6], [7, 8, 9]
    orig = _row(x, y, [-1.0, -2.0, -3.0])
    replay = _row(x2, y, [-1.0, -2.0, -3.0], replay=True, source=orig)
    scorers = dict(score_policy=partial(trainer._score, trainer.infer_model),
                   score_reference=partial(trainer._score, trainer.reference))
    old, ref, kl_old = row_logprobs([orig, replay], replay_old_logprobs="original",
                                    mini_batches=1, **scorers)
    assert old[0] is None  # one optimizer step per rollout: the original is on-policy
    assert torch.equal(old[1], orig.rollout_logprobs)  # pi_old(y|x) reaches the loss
    ref_x = trainer._score(trainer.reference, [orig])[0]
    assert torch.equal(ref[0], ref_x) and torch.equal(ref[1], ref_x)  # pi_ref(y|x) for both
    assert torch.equal(kl_old[0], orig.rollout_logprobs)

    old, _, _ = row_logprobs([orig, replay], replay_old_logprobs="original", mini_batches=2,
                             **scorers)
    assert torch.equal(old[0], orig.rollout_logprobs)  # several optimizer steps: the recorded one
    orig.ref = replay.ref = None
    old, ref, _ = row_logprobs([orig, replay], replay_old_logprobs="rewritten", mini_batches=1,
                               **scorers)
    under_x2 = trainer._score(trainer.infer_model, [replay])[0]
    assert torch.allclose(old[1], under_x2) and not torch.allclose(old[1], orig.rollout_logprobs)
    assert torch.allclose(ref[1], trainer._score(trainer.reference, [replay])[0])
    assert not torch.allclose(ref[1], ref[0])


def test_replay_ratio_and_clip_are_measured(world, tmp_path):
    # As published, a replay's ratio is pi(y|x') / pi_old(y|x): not 1, and with a tight clip
    # some replay tokens are clipped. Under x' (rewritten) it is 1 on the first step.
    row = _partial_trainer(tmp_path / "a", world, clip_low=0.01, clip_high=0.01).train()[0]
    assert row["replay_count"] > 0
    assert abs(row["replay_ratio_mean"] - 1) > 1e-3 and row["replay_clip_fraction"] > 0
    row = _partial_trainer(tmp_path / "b", world, clip_low=0.01, clip_high=0.01,
                           replay_old_logprobs="rewritten").train()[0]
    assert row["replay_ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert row["replay_clip_fraction"] == 0.0
    row = _partial_trainer(tmp_path / "c", world, replay=False).train()[0]
    assert row["replay_ratio_mean"] is None and row["replay_clip_fraction"] is None


def test_replays_failing_under_the_rewritten_instruction_are_dropped(world, tmp_path):
    def fails_rewritten(responses, ids, kwargs, prompts=None, **kw):
        # originals (2 constraints) meet constraint 0; a rewritten x' (1 constraint) fails it
        return [[len(row) == 2 and j == 0 for j in range(len(row))] for row in ids]

    row = _partial_trainer(tmp_path / "a", world, verifier=fails_rewritten).train()[0]
    assert row["replay_count"] == 0 and row["replay_rejected"] == 4
    row = _partial_trainer(tmp_path / "b", world, verifier=fails_rewritten,
                           replay_recheck=False).train()[0]
    assert row["replay_count"] == 4 and row["replay_rejected"] == 0


@pytest.mark.parametrize("selection", ["published", "jaccard"])
def test_truncated_responses_are_not_candidates_when_the_option_is_off(world, tmp_path, selection):
    # One token per response: nearly all stop at the length limit.
    kw = dict(max_new_tokens=1, replay_selection=selection, num_replay=6, replay_k=3)
    on = _partial_trainer(tmp_path / "a", world, **kw).train()[0]
    off = _partial_trainer(tmp_path / "b", world, replay_truncated=False, **kw).train()[0]
    truncated = round((1 - on["stopped"]) * 6)
    assert truncated > 0
    assert on["replay_truncated_excluded"] == 0
    assert off["replay_truncated_excluded"] == truncated
    assert off["replay_candidates"] == on["replay_candidates"] - truncated
    assert off["replay_count"] <= off["replay_candidates"] < on["replay_count"]


def test_the_reference_is_the_initial_model_when_resuming_from_a_checkpoint(world, tmp_path):
    tokenizer = world[0]
    init = str(tmp_path / "init")
    build_model(tokenizer, seed=0, hidden_size=32).save_pretrained(init)
    tokenizer.save_pretrained(init)
    cfg = _config(tmp_path, model=init, steps=2, kl_coef=0.01, lr=1e-2)
    HiRTrainer(cfg, tokenizer=tokenizer, tasks=_two_constraint_tasks(4),
               verifier=_partial_verifier).train()
    ckpt = latest_checkpoint(cfg.out)
    with open(os.path.join(ckpt, "reference.json"), encoding="utf-8") as fh:
        assert json.load(fh) == {"reference": init}

    # --model <checkpoint>: the policy starts from the checkpoint, the reference stays the initial
    # model of the run that wrote it (before the fix: a deepcopy of the checkpoint).
    again = HiRTrainer(_config(tmp_path / "next", model=ckpt, kl_coef=0.01), tokenizer=tokenizer,
                       tasks=_two_constraint_tasks(4))
    assert again.reference_source == init
    from transformers import AutoModelForCausalLM
    initial = AutoModelForCausalLM.from_pretrained(init).state_dict()
    for name, p in again.reference.state_dict().items():
        assert torch.equal(p, initial[name]), name
    assert any(not torch.equal(p, initial[n]) for n, p in again.model.state_dict().items())

    # Resuming the run with another reference is refused, naming the one it used.
    other = _config(tmp_path, model=init, steps=3, kl_coef=0.01, ref_model=ckpt, resume=True)
    with pytest.raises(ValueError, match="reference model was"):
        HiRTrainer(other, tokenizer=tokenizer, tasks=_two_constraint_tasks(4)).train()
    # the old name of the setting still reads
    assert load_config(None, {"reference_model": "r"}).ref_model == "r"


def test_dropout_is_off_in_the_loss_forward(world, tmp_path):
    tokenizer = world[0]

    def with_dropout():
        model = build_model(tokenizer, seed=0, hidden_size=32)
        model.config.attention_dropout = 0.3
        for layer in model.model.layers:
            layer.self_attn.attention_dropout = 0.3
        return model

    cfg = _config(tmp_path / "a", steps=1)
    trainer = HiRTrainer(cfg, model=with_dropout(), tokenizer=tokenizer,
                         tasks=_two_constraint_tasks(4), verifier=_partial_verifier)
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in trainer.model.model.layers)
    assert math.isfinite(trainer.train()[0]["loss"])
    # Kept on request: the packed attention of the loss forward then refuses it, so a mismatch
    # between the loss forward and pi_old cannot pass silently.
    cfg = _config(tmp_path / "b", steps=1, disable_dropout=False)
    trainer = HiRTrainer(cfg, model=with_dropout(), tokenizer=tokenizer,
                         tasks=_two_constraint_tasks(4), verifier=_partial_verifier)
    with pytest.raises(NotImplementedError, match="dropout"):
        trainer.train()


def test_importance_correction_needs_rewritten_replay_logprobs():
    with pytest.raises(ValueError, match="replay_old_logprobs"):
        TrainConfig(model="m", replay_importance=True).validate()


@pytest.mark.parametrize("top_k,top_p", [(3, 1.0), (0, 0.7), (5, 0.9)])
def test_originals_pi_old_is_untruncated_under_top_k_top_p(world, tmp_path, top_k, top_p):
    # Two mini-batches: originals carry the rollout's pi_old into the loss. With a learning rate
    # too small to move the policy, their ratio must be 1: pi_old is the full temperature-scaled
    # softmax the loss computes, not the top-k/top-p distribution the token was drawn from
    # (with that one the ratio was below 1 and negative-advantage tokens were clipped).
    row = _trainer(world, _config(tmp_path, steps=1, mini_batches=2, top_k=top_k, top_p=top_p,
                                  temperature=0.8, lr=1e-12, replay=False)).train()[0]
    assert row["ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert row["clip_fraction"] == 0.0
