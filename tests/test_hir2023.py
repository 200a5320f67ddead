"""HIR 2023 (``algorithm: hir2023``): relabeling on hand-built cases, sub-output sampling's bounds
and swap rule, the loss and its gradients against a plain PyTorch computation written here
(full logits, torch's own label smoothing), the two-pass gradient, and a few CPU iterations on a
tiny model that write a checkpoint."""
import json
import math
import os
import random

import pytest
import torch
import torch.nn.functional as F

from hirfast import verify
from hirfast.config import TrainConfig
from hirfast.constraints import Constraint, Task
from hirfast.demo_model import build_model, build_tokenizer, demo_tasks, sample_response
from hirfast.hir2023 import (CORRECT_INSTRUCTION, WRONG_INSTRUCTION, AnswerTask, Example, Sample,
                             answers_match, hir2023_loss, normalize_answer, packed_stats,
                             relabel_answer, relabel_constraints, sample_span, sub_output)
from hirfast.hir2023_train import Hir2023Trainer
from hirfast.packing import lm_head_weight, pack


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- relabeling ---------------------------------------------------------------------------------

def test_answer_normalization_is_the_seeds():
    assert normalize_answer(" (A).\n") == "(a)"
    assert answers_match("False.", "False") and answers_match("f a l s e", "False")
    assert answers_match("] ]", "]]")
    assert not answers_match("True", "False") and not answers_match("(B)", "(A)")


def test_relabel_answer_correct_and_wrong():
    task = AnswerTask("not ( True ) and ( True ) is", "False", key="be/0")
    right = relabel_answer(task, [5, 6], "False.")
    assert (right.correct, right.positive, right.negative) == (True, (CORRECT_INSTRUCTION,), (WRONG_INSTRUCTION,))
    wrong = relabel_answer(task, [7], "True")
    assert (wrong.correct, wrong.positive, wrong.negative) == (False, (WRONG_INSTRUCTION,), (CORRECT_INSTRUCTION,))
    assert wrong.response == (7,) and wrong.target == "False"
    assert wrong.prompt(wrong.positive) == ("Solve the question with wrong answer.\n\n"
                                            "Q: not ( True ) and ( True ) is\nA:")
    assert task.instruction() == wrong.prompt((CORRECT_INSTRUCTION,))


def _constraint_task():
    cs = (Constraint("punctuation:no_comma", {}, "Do not use commas"),
          Constraint("detectable_format:title", {}, "Give a title in double angular brackets"),
          Constraint("startend:quotation", {}, "Wrap the answer in double quotes"))
    return Task("Write about the river.", cs, key="t1")


def test_relabel_constraints_positive_is_what_was_met():
    task = _constraint_task()
    s = relabel_constraints(task, [True, False, True], [1, 2, 3])
    assert s.positive == ("Do not use commas", "Wrap the answer in double quotes")
    assert s.negative == tuple(c.text for c in task.constraints)
    assert s.prompt(s.positive) == ("Write about the river.\nDo not use commas. "
                                    "Wrap the answer in double quotes.")
    assert s.prompt(s.negative) == task.instruction()
    every = relabel_constraints(task, [True, True, True], [1])
    assert every.positive == s.negative and every.negative is None
    nothing = relabel_constraints(task, [False, False, False], [1])
    assert nothing.positive == () and nothing.prompt(()) == "Write about the river."
    fixed = Task("q", task.constraints, key="p", prompt="q as the file gave it")
    assert relabel_constraints(fixed, [True, False, True], [1]) is None
    with pytest.raises(ValueError, match="2 verdicts for 3 constraints"):
        relabel_constraints(task, [True, False], [1])


# --- sub-output sampling ------------------------------------------------------------------------

@pytest.mark.parametrize("length", list(range(1, 30)))
def test_sample_span_bounds(length):
    rng = random.Random(length)
    seen = set()
    for _ in range(3000):
        start, end = sample_span(length, rng)
        assert 0 <= start < end <= length
        if length <= 3:
            assert (start, end) == (0, length)
        else:
            assert start % 2 == 0 and start <= length - 4 and (end - start) % 2 == 1
        seen.add((start, end))
    if 3 < length <= 9:  # every allowed pair is drawn
        allowed = {(s, e) for s in range(0, length - 3, 2) for e in range(s + 1, length + 1, 2)}
        assert seen == allowed


def test_sample_span_refuses_empty():
    with pytest.raises(ValueError):
        sample_span(0, random.Random(0))


class _Fixed:
    """An rng whose randrange returns preset values (each checked to be in range)."""

    def __init__(self, *values):
        self.values = list(values)

    def randrange(self, n):
        v = self.values.pop(0)
        assert 0 <= v < n
        return v


CHARS = "Falsetru!x "


def _decode(ids):
    return "".join(CHARS[i] for i in ids)


def _ids(text):
    return [CHARS.index(c) for c in text]


def _answer_sample(text, correct):
    task = AnswerTask("q", "False")
    s = relabel_answer(task, _ids(text), text)
    assert s.correct is correct
    return s


def test_swap_when_a_wrong_output_cut_reads_as_the_target():
    s = _answer_sample("False!x", False)                # 7 tokens, wrong
    e = sub_output(s, _Fixed(0, 2), _decode)           # start 0, end 5: "False"
    assert (e.prefix, e.target) == ((), tuple(_ids("False")))
    assert e.swapped and e.positive == (CORRECT_INSTRUCTION,) and e.negative == (WRONG_INSTRUCTION,)
    e = sub_output(s, _Fixed(1, 0), _decode)           # start 2, end 3: "Fal" is part of "false"
    assert e.prefix == tuple(_ids("Fa")) and e.target == tuple(_ids("l")) and e.swapped
    e = sub_output(s, _Fixed(0, 3), _decode)           # end 7 = the whole output: no swap
    assert not e.swapped and e.positive == (WRONG_INSTRUCTION,)


def test_no_swap_for_other_cuts_or_correct_outputs():
    wrong = _answer_sample("truex!!", False)
    e = sub_output(wrong, _Fixed(0, 1), _decode)       # "tru" is not in "false"
    assert not e.swapped and e.positive == (WRONG_INSTRUCTION,) and e.target == tuple(_ids("tru"))
    right = _answer_sample("False", True)
    e = sub_output(right, _Fixed(0, 1), _decode)       # start 0, end 3
    assert not e.swapped and e.positive == (CORRECT_INSTRUCTION,)
    assert e.prefix == () and e.target == tuple(_ids("Fal"))
    constraint = Sample("constraint", "q", ("a",), ("a", "b"), (1, 2, 3, 4, 5))
    e = sub_output(constraint, _Fixed(), _decode)      # constraint samples train whole
    assert e.target == (1, 2, 3, 4, 5) and e.prefix == () and not e.swapped


# --- the loss against a plain PyTorch computation ------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    words = "a b c d e f g h i j k l m n o p q r s t u v w x y z".split()
    tok = build_tokenizer([" ".join(words), "<|user|>\n<|end|>\n<|assistant|>\n"])
    model = build_model(tok, seed=3, hidden_size=32, layers=2)
    return tok, model


def _reference_stats(model, prompt, target):
    """Full logits of prompt + target: per-token log-softmax rows of the target positions."""
    ids = torch.tensor([list(prompt) + list(target)])
    logits = model(input_ids=ids).logits[0].float()
    return logits[len(prompt) - 1:len(prompt) + len(target) - 1], torch.tensor(list(target))


def _reference_loss(model, rows, eps, coef, contrast):
    """rows: (positive prompt, [candidate prompts], target). Written from the method's text."""
    all_logits, all_targets, ent, contrast_terms = [], [], [], []
    for pos, cands, target in rows:
        logits, tgt = _reference_stats(model, pos, target)
        all_logits.append(logits)
        all_targets.append(tgt)
        ent.append(torch.distributions.Categorical(logits=logits).entropy())
        if cands and contrast != "off":
            p_pos = torch.exp(-F.cross_entropy(logits, tgt))          # exp(-mean token CE)
            p_c = [torch.exp(-F.cross_entropy(*_reference_stats(model, c, target))) for c in cands]
            total = p_pos + sum(p_c)
            if contrast == "two-way":
                contrast_terms.append(-(1 - eps) * torch.log(p_pos / total) - eps * torch.log(p_c[0] / total))
            else:
                contrast_terms.append(-torch.log(p_pos / total))
    logits, targets = torch.cat(all_logits), torch.cat(all_targets)
    loss = F.cross_entropy(logits, targets, label_smoothing=eps) - coef * torch.cat(ent).mean()
    if contrast_terms:
        loss = loss + torch.stack(contrast_terms).mean()
    return loss


def _hirfast_loss(model, rows, eps, coef, contrast, max_tokens=10_000):
    prompts, targets, pos_index, cand = [], [], [], []
    for pos, cands, target in rows:
        pos_index.append(len(prompts))
        prompts.append(pos), targets.append(target)
        cand.append([])
        for c in cands:
            cand[-1].append(len(prompts))
            prompts.append(c), targets.append(target)
    width = max(1, max(len(c) for c in cand))
    cand_index = torch.zeros(len(rows), width, dtype=torch.long)
    cand_mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, c in enumerate(cand):
        cand_index[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        cand_mask[i, :len(c)] = True
    stats = torch.zeros(len(prompts), 3)
    head = lm_head_weight(model)
    for b in pack(prompts, targets, max_tokens_per_batch=max_tokens):
        stats = stats.index_copy(0, torch.tensor(b.rows), packed_stats(model, b, head))
    lengths = torch.tensor([len(r[2]) for r in rows])
    return hir2023_loss(stats[torch.tensor(pos_index)], lengths, stats[cand_index, 0], cand_mask,
                        contrast=contrast, eps=eps, entropy_coef=coef)


def _rows(tok, contrast):
    rng = random.Random(7)
    vocab = len(tok)

    def seq(n):
        return [rng.randrange(6, vocab) for _ in range(n)]

    rows = []
    for i in range(5):
        pos, target = seq(rng.randint(3, 9)), seq(rng.randint(1, 6))
        n_cand = 0 if i == 2 else (1 if contrast == "two-way" else rng.randint(1, 3))
        rows.append((pos, [seq(rng.randint(2, 8)) for _ in range(n_cand)], target))
    return rows


@pytest.mark.parametrize("contrast", ["two-way", "in-batch", "off"])
@pytest.mark.parametrize("eps,coef", [(0.2, 0.001), (0.0, 0.5)])
def test_loss_and_gradients_match_plain_pytorch(tiny, contrast, eps, coef):
    tok, model = tiny
    rows = _rows(tok, contrast)
    params = [p for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    want = _reference_loss(model, rows, eps, coef, contrast)
    want.backward()
    want_grads = [p.grad.clone() for p in params]
    model.zero_grad(set_to_none=True)
    got, parts = _hirfast_loss(model, rows, eps, coef, contrast)
    got.backward()
    assert math.isclose(float(got.detach()), float(want.detach()), rel_tol=1e-5, abs_tol=1e-6)
    assert parts["contrast_rows"] == (0 if contrast == "off" else 4)
    for p, g in zip(params, want_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_label_smoothing_term_is_torchs(tiny):
    # The smoothing statistic alone, as the mean over the vocabulary of -log p, per token.
    tok, model = tiny
    prompt, target = [7, 8, 9, 10], [11, 12, 13]
    b = pack([prompt], [target], max_tokens_per_batch=100)[0]
    with torch.no_grad():
        stats = packed_stats(model, b, lm_head_weight(model))
        logits, tgt = _reference_stats(model, prompt, target)
    smooth = -torch.log_softmax(logits, -1).mean(-1).sum()
    torch.testing.assert_close(stats[0, 1], smooth, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(stats[0, 0], F.cross_entropy(logits, tgt, reduction="sum"))


# --- the trainer ---------------------------------------------------------------------------------

def _constraint_world():
    known = verify.instruction_ids()
    tasks = [Task(t.query, tuple(c for c in t.constraints if c.instruction_id in known) or
                  (Constraint.from_spec("punctuation:no_comma", {}),), key=t.key)
             for t in demo_tasks(16, seed=1)]
    rng = random.Random(0)
    corpus = [sample_response(rng, t, 0.5) for t in demo_tasks(40, seed=3)]
    tok = build_tokenizer(corpus + [t.instruction() for t in tasks] + [c.text for t in tasks for c in t.constraints]
                          + [t.query for t in tasks] + ["<|user|>\n<|end|>\n<|assistant|>\n"])
    return tok, tasks


def _cfg(tmp_path, **kw):
    base = dict(model="tiny", out=str(tmp_path / "run"), algorithm="hir2023", steps=2,
                tasks_per_step=3, rollouts_per_task=2, max_new_tokens=8, lr=5e-4, progress=False,
                seed=3, hir2023_epochs=2, hir2023_batch_size=4, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("contrast", ["two-way", "in-batch"])
def test_constraint_iterations_train_and_checkpoint(tmp_path, contrast):
    from transformers import AutoModelForCausalLM

    tok, tasks = _constraint_world()
    cfg = _cfg(tmp_path, hir2023_contrast=contrast, eval_every=2, eval_tasks=3)
    trainer = Hir2023Trainer(cfg, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok,
                             tasks=tasks, eval_tasks=tasks[:3])
    history = trainer.train()
    assert [m["step"] for m in history] == [1, 2]
    assert [m["store"] for m in history] == [6, 12]          # the store keeps every iteration
    assert history[1]["optimizer_steps"] == 2 * 3             # 2 epochs x ceil(12 / 4)
    for m in history:
        assert math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) and m["contrast"] >= 0
        assert 0 <= m["ila"] <= 1 and 0 <= m["cla"] <= 1
    assert "eval_ila" in history[-1]
    ckpt = os.path.join(cfg.out, "checkpoints", "step-00000002")
    assert os.path.exists(os.path.join(ckpt, "model.safetensors"))
    reloaded = AutoModelForCausalLM.from_pretrained(ckpt)
    for a, b in zip(reloaded.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(a, b)
    rows = [json.loads(line) for line in open(os.path.join(cfg.out, "metrics.jsonl"))]
    assert len(rows) == 2 and rows[0]["replay_count"] == 6


def _examples(tok, n=6):
    rng = random.Random(1)
    tasks = [AnswerTask(f"a {rng.choice('bcde')} f", "g", key=str(i)) for i in range(n)]
    out = []
    for i, t in enumerate(tasks):
        ids = tok(" g" if i % 2 else " h", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append(Example(relabel_answer(t, ids, tok.decode(ids, skip_special_tokens=True)), (), (), (),
                           ()))
    return [Example(e.sample, e.sample.positive, e.sample.negative, (), e.sample.response) for e in out]


@pytest.mark.parametrize("contrast", ["two-way", "in-batch"])
def test_two_pass_gradient_equals_one_pass(tmp_path, contrast):
    words = "a b c d e f g h Solve the question with correct wrong answer. Q: A:".split()
    tok = build_tokenizer([" ".join(words), "\n\nQ: a\nA:", "<|user|>\n<|end|>\n<|assistant|>\n"])
    grads = []
    for budget in (100_000, 40):
        cfg = _cfg(tmp_path, hir2023_contrast=contrast, max_tokens_per_micro_batch=budget,
                   hir2023_contrast_group=3)
        trainer = Hir2023Trainer(cfg, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok,
                                 tasks=[AnswerTask("a b f", "g")])
        trainer.optimizer.step = lambda: None
        parts = trainer.update(_examples(tok))
        assert parts["contrast_rows"] == 6
        assert (parts["micro_batches"] > 2) == (budget == 40)
        grads.append([p.grad.clone() for p in trainer.model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_answer_tasks_train_from_the_command_line(tmp_path, capsys):
    from hirfast import cli
    from hirfast.bbh import load_tasks

    tasks = load_tasks(["boolean_expressions"], "train")[:12]
    data = tmp_path / "bbh.jsonl"
    data.write_text("".join(json.dumps({"input": t.question, "target": t.target}) + "\n" for t in tasks))
    tok = build_tokenizer([t.instruction() for t in tasks] + [" True False", "<|user|>\n<|end|>\n<|assistant|>\n",
                                                              "Solve the question with wrong answer."])
    model_dir = tmp_path / "model"
    build_model(tok, seed=0, hidden_size=32).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    out = tmp_path / "run"
    code = cli.main(["train", "--algorithm", "hir2023", "--model", str(model_dir), "--data", str(data),
                     "--eval-data", str(data), "--eval-every", "2", "--eval-tasks", "4",
                     "--steps", "2", "--tasks-per-step", "4", "--rollouts-per-task", "2",
                     "--max-new-tokens", "4", "--hir2023-epochs", "1", "--hir2023-batch-size", "4",
                     "--lr", "5e-4", "--progress", "false", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["store"] for r in rows] == [8, 16]
    assert all(math.isfinite(r["loss"]) for r in rows) and "eval_ila" in rows[-1]
    assert os.path.exists(out / "checkpoints" / "step-00000002" / "model.safetensors")


def test_unsupported_settings_are_refused(tmp_path):
    tok, tasks = _constraint_world()
    with pytest.raises(ValueError, match="no KL term"):
        Hir2023Trainer(_cfg(tmp_path, kl_loss_coef=0.1), model=build_model(tok, seed=0, hidden_size=32),
                       tokenizer=tok, tasks=tasks)


def _untimed(rows):
    return [{k: v for k, v in r.items() if not k.startswith(("time_", "tokens_per_s"))} for r in rows]


def test_resume_continues_as_an_uninterrupted_run(tmp_path):
    """3 iterations straight, and 2 then a resumed third: the same store, model and metrics (the
    third iteration trains on the first two's samples, so a store lost at resume would show)."""
    tok, tasks = _constraint_world()

    def run(out, steps, resume=False):
        cfg = _cfg(tmp_path, out=str(tmp_path / out), steps=steps, resume=resume)
        trainer = Hir2023Trainer(cfg, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok,
                                 tasks=tasks)
        trainer.train()
        return trainer

    straight = run("straight", 3)
    run("split", 2)
    resumed = run("split", 3, resume=True)
    assert resumed.store == straight.store and len(straight.store) == 18
    assert resumed.updates == straight.updates
    for a, b in zip(resumed.model.parameters(), straight.model.parameters()):
        assert torch.equal(a, b)
    rows = {name: [json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")]
            for name in ("straight", "split")}
    assert _untimed(rows["split"]) == _untimed(rows["straight"]) and len(rows["split"]) == 3


def test_resume_from_another_algorithms_checkpoint_is_refused(tmp_path):
    from hirfast.trainer import HiRTrainer

    tok, tasks = _constraint_world()
    rl = _cfg(tmp_path, algorithm="hir", steps=1)
    HiRTrainer(rl, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok, tasks=tasks).train()
    cfg = _cfg(tmp_path, steps=2, resume=True)
    trainer = Hir2023Trainer(cfg, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok,
                             tasks=tasks)
    with pytest.raises(ValueError, match="holds no HIR 2023 sample store"):
        trainer.train()


def test_bad_answer_rows_name_the_line(tmp_path):
    from hirfast.hir2023_train import load_answer_tasks

    data = tmp_path / "d.jsonl"
    data.write_text('{"input": "x", "target": "y"}\n{"input": "x", "target": 3}\n')
    with pytest.raises(ValueError, match=r"d.jsonl:2: field 'target'"):
        load_answer_tasks(str(data), "train")
    data.write_text('{"input": "x", "target": "y"}\n\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"d.jsonl:3: expected an object"):
        load_answer_tasks(str(data), "train")
    data.write_text('{"input": "x", "target": "y"}\n{"input": \n')
    with pytest.raises(ValueError, match=r"d.jsonl:2: invalid JSON"):
        load_answer_tasks(str(data), "train")


@pytest.mark.gpu
@pytest.mark.parametrize("bf16", ["on", "off"])
def test_iterations_on_a_gpu(tmp_path, bf16):
    # The CUDA path: rollout, bf16 autocast of the packed forward (the lm_head statistics in fp32),
    # the bf16 inference copy refreshed after training.
    tok, tasks = _constraint_world()
    cfg = _cfg(tmp_path, device="cuda", bf16=bf16, hir2023_contrast="in-batch")
    trainer = Hir2023Trainer(cfg, model=build_model(tok, seed=0, hidden_size=32), tokenizer=tok,
                             tasks=tasks)
    history = trainer.train()
    assert all(math.isfinite(m["loss"]) for m in history)
    for a, b in zip(trainer.infer_model.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-2, atol=1e-2)


def test_the_shipped_config_loads():
    from hirfast.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = load_config(os.path.join(root, "configs", "hir2023-bbh-qwen2.5-1.5b.yaml")).validate()
    assert (cfg.algorithm, cfg.hir2023_epochs, cfg.hir2023_batch_size, cfg.lr) == ("hir2023", 10, 64, 5e-4)
    with pytest.raises(ValueError, match="hir2023_contrast"):
        TrainConfig(hir2023_contrast="three-way").validate()
    with pytest.raises(ValueError, match="hir2023_label_smoothing"):
        TrainConfig(hir2023_label_smoothing=1.0).validate()
