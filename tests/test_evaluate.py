"""`hirfast eval` end to end on the CPU: a tiny Llama built from a config and a tiny BPE tokenizer
with a chat template, trained here on the benchmark prompts (nothing is downloaded).

The generated responses are compared with Hugging Face's greedy `generate` on the same chat
prompts, and the written verdicts with `hirfast.verify.check` on the written responses.
"""
from __future__ import annotations

import json

import pytest
import torch

import hirfast.verify as verify
from hirfast import cli, eval_muldimif, evaluate, verify_cli

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")
SPECIALS = ["<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _train_tokenizer(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>",
                                   chat_template=CHAT_TEMPLATE)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    prompts = [r.prompt for bench in ("ifeval", "ifbench")
               for r in verify_cli.load_inputs(evaluate.benchmark_path(bench))]
    prompts += [p.prompt for p in eval_muldimif.load_prompts()[:50]]
    tokenizer = _train_tokenizer(prompts)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-chat-model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _run(capsys, *argv):
    code = cli.main(["eval", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _hf_greedy(model_dir, prompt, max_new_tokens, device="cpu", with_margins=False):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]], device=device)
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                             output_scores=with_margins, return_dict_in_generate=True)
    tokens = out.sequences[0, ids.shape[1]:].tolist()
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    if not with_margins:
        return text
    # The gap between the two likeliest tokens at each step: where it is tiny, another engine's
    # rounding may pick the other token and greedy texts part ways from there.
    margins = [float(s[0].topk(2).values[0] - s[0].topk(2).values[1]) for s in out.scores]
    prefixes = [tokenizer.decode(tokens[:i], skip_special_tokens=True) for i in range(len(tokens) + 1)]
    return text, margins, prefixes


@pytest.mark.parametrize("bench", ["ifbench", "ifeval"])
def test_eval_generates_scores_and_writes(tiny_model_dir, tmp_path, capsys, bench):
    rows = verify_cli.load_inputs(evaluate.benchmark_path(bench))[:3]
    unknown = {i for r in rows for i in r.instruction_ids} - set(verify.instruction_ids())
    if unknown:
        pytest.skip(f"the engine does not know {sorted(unknown)} yet")
    out_dir = tmp_path / "out"
    # --device cpu: on a GPU machine "auto" would generate in bf16 on the GPU, which greedy
    # fp32 CPU decoding need not match (test_eval_on_gpu_matches_hf_greedy is the GPU twin).
    code, out, err = _run(capsys, "--model", tiny_model_dir, "--bench", bench, "--limit", 3,
                          "--max-new-tokens", 7, "--batch-size", 2, "--threads", 2, "--out", out_dir,
                          "--device", "cpu")
    assert code == 0, err
    assert "prompt-level" in out and "== loose ==" in out
    assert "generating" in err and "checking" in err  # the progress bars

    written = _read_jsonl(out_dir / "responses.jsonl")
    assert [w["key"] for w in written] == [r.key for r in rows]
    assert [w["prompt"] for w in written] == [r.prompt for r in rows]
    for w, r in zip(written, rows):
        assert w["response"] == _hf_greedy(tiny_model_dir, r.prompt, 7)

    responses = [w["response"] for w in written]
    args = ([r.instruction_ids for r in rows], [r.kwargs for r in rows], [r.prompt for r in rows])
    strict = verify.check(responses, *args)
    loose = verify.check(responses, *args, loose=True)
    verdicts = _read_jsonl(out_dir / "verdicts.jsonl")
    expected = [{"key": r.key, "index": j, "instruction_id": iid, "strict": s[j], "loose": lo[j]}
                for r, s, lo in zip(rows, strict, loose) for j, iid in enumerate(r.instruction_ids)]
    assert verdicts == expected
    assert (out_dir / "report.txt").read_text().startswith(f"hirfast eval --bench {bench}: 3 prompts; model ")


def test_eval_scores_existing_responses_like_the_verdict_file(data_dir, tmp_path, capsys):
    responses = data_dir / "ifbench" / "input_response_data_qwen3_4b.jsonl"
    code, out, err = _run(capsys, "--bench", "ifbench", "--responses", responses, "--out", tmp_path)
    assert code == 0, err
    got = _read_jsonl(tmp_path / "verdicts.jsonl")
    want = _read_jsonl(data_dir / "ifbench" / "input_response_data_qwen3_4b.verdicts.jsonl")
    assert len(got) == len(want) == 335
    for g, w in zip(got, want):
        assert (g["key"], g["index"], g["instruction_id"]) == (w["key"], w["index"], w["instruction_id"])
        if w["stable"]:
            assert (g["strict"], g["loose"]) == (w["strict"], w["loose"]), g
    strict_prompt_level = sum(all(v["strict"] for v in got if v["key"] == k)
                              for k in {v["key"] for v in got}) / 294
    assert f"prompt-level: {strict_prompt_level}" in out


def test_eval_muldimif_generates_and_prints_the_reference_report(tiny_model_dir, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run(capsys, "--model", tiny_model_dir, "--bench", "muldimif", "--limit", 3,
                          "--max-new-tokens", 7, "--batch-size", 2, "--out", out_dir)
    assert code == 0, err
    prompts = eval_muldimif.load_prompts()[:3]
    written = _read_jsonl(out_dir / "responses.jsonl")
    assert [w["id"] for w in written] == [p.key for p in prompts]
    for w, p in zip(written, prompts):
        assert w["response"] == _hf_greedy(tiny_model_dir, p.prompt, 7)
    expected = verify.check_muldimif([w["response"] for w in written], [p.constraints for p in prompts])
    got = _read_jsonl(out_dir / "verdicts.jsonl")
    assert [g["verdict"] for g in got] == [v for row in expected for v in row]
    for line in ("overall: all constraints", "per constraint pattern:", "per first-level type",
                 "per second-level type", "per difficulty:", "MulDimIF has no loose mode"):
        assert line in out
    assert (out_dir / "report.txt").read_text().startswith("hirfast eval --bench muldimif: 3 prompts; model ")


def test_eval_muldimif_scores_existing_responses_like_the_contract(data_dir, tmp_path, capsys):
    import gzip

    with gzip.open(data_dir / "muldimif" / "responses.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    first = [r for r in rows if r["index"] == 0]  # the model's responses, one per prompt
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], "response": r["response"]}) + "\n" for r in first))
    code, out, err = _run(capsys, "--bench", "muldimif", "--responses", path, "--out", tmp_path / "o")
    assert code == 0, err
    want = {v["id"]: v["verdicts"] for v in _read_jsonl(data_dir / "muldimif" / "verdicts.jsonl") if v["index"] == 0}
    got = _read_jsonl(tmp_path / "o" / "verdicts.jsonl")
    assert len(got) == sum(len(v) for v in want.values())
    assert all(int(g["verdict"]) == want[g["id"]][g["index"]] for g in got)
    every = sum(all(v) for v in want.values())
    assert f"overall: all constraints {every}/1200 = {every / 1200:.4f}" in out


@pytest.mark.parametrize("argv, message", [
    (["--bench", "ifbench"], "give --model"),
    (["--bench", "ifeval", "--model", "x", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["--bench", "ifeval", "--model", "x", "--top-p", "0"], "--top-p"),
    (["--bench", "ifeval", "--model", "x", "--limit", "0"], "--limit"),
])
def test_bad_arguments_are_refused(capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and message in err


def test_responses_missing_a_prompt_name_the_keys(tmp_path, capsys):
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"prompt": "not a benchmark prompt", "response": "x"}) + "\n")
    code, _, err = _run(capsys, "--bench", "ifeval", "--responses", partial, "--out", tmp_path / "o")
    assert code == 2 and "no response for 541 prompt(s)" in err


def _generation_args(batch_size, max_new_tokens):
    import argparse

    return argparse.Namespace(batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=0.0,
                              top_p=1.0, seed=0, system_prompt=None)


def test_generation_refills_rows_and_fits_the_memory(tiny_model_dir, monkeypatch):
    """`--batch-size 2` over 7 prompts (each finished row takes the next prompt) gives every prompt
    the response it gets in a batch of its own, greedy; when 7 rows do not fit the cache budget,
    as many as fit are used (here 2) rather than failing."""
    from hirfast import rollout

    tokenizer, model = evaluate.load_model(str(tiny_model_dir), "cpu", "float32")
    prompts = [r.prompt for r in verify_cli.load_inputs(evaluate.benchmark_path("ifeval"))[:7]]
    labels = [str(i) for i in range(len(prompts))]
    alone = [evaluate.generate_texts(tokenizer, model, [p], ["x"], _generation_args(1, 9))[0]
             for p in prompts]
    assert evaluate.generate_texts(tokenizer, model, prompts, labels, _generation_args(2, 9)) == alone

    slots = []
    engine = rollout.generate

    def recording(*args, **kwargs):
        result = engine(*args, **kwargs)
        slots.append(result.stats.slots)
        return result

    ids = evaluate.chat_prompts(tokenizer, prompts, None)
    plan = rollout.plan_cache(model.config, sequences=1, group_size=1, dtype=torch.float32,
                              max_len=max(map(len, ids)) + 9 - 1)
    monkeypatch.setattr(rollout, "generate", recording)
    monkeypatch.setattr(rollout, "_default_budget", lambda device, held: 2 * plan.total_bytes + 1)
    assert evaluate.generate_texts(tokenizer, model, prompts, labels, _generation_args(7, 9)) == alone
    assert slots == [2]


def test_a_tokenizer_without_chat_template_is_refused(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        evaluate.chat_prompts(tokenizer, ["hi"], None)


def test_prompts_longer_than_the_model_are_refused(tiny_model_dir, tmp_path, capsys):
    import shutil

    from transformers import AutoConfig

    short = tmp_path / "short"
    shutil.copytree(tiny_model_dir, short)
    config = AutoConfig.from_pretrained(short)
    config.max_position_embeddings = 16
    config.save_pretrained(short)
    code, _, err = _run(capsys, "--model", short, "--bench", "ifeval", "--limit", 1, "--out", tmp_path / "o",
                        "--device", "cpu")
    assert code == 2 and "takes at most 16 positions" in err and "key 1000" in err


@pytest.mark.gpu
def test_eval_on_gpu_matches_hf_greedy(tiny_model_dir, tmp_path, capsys):
    # fp32 on the GPU, against transformers' greedy generate on the same GPU. Different attention
    # kernels round differently, so a response may part from HF's only at a step where HF's two
    # likeliest tokens are within 1e-3 (a tie), and must equal it up to there.
    rows = verify_cli.load_inputs(evaluate.benchmark_path("ifeval"))[:3]
    out_dir = tmp_path / "out"
    code, _, err = _run(capsys, "--model", tiny_model_dir, "--bench", "ifeval", "--limit", 3,
                        "--max-new-tokens", 12, "--batch-size", 2, "--threads", 2, "--out", out_dir,
                        "--device", "cuda", "--dtype", "float32")
    assert code == 0, err
    for w, r in zip(_read_jsonl(out_dir / "responses.jsonl"), rows):
        want, margins, prefixes = _hf_greedy(tiny_model_dir, r.prompt, 12, device="cuda",
                                             with_margins=True)
        if w["response"] == want:
            continue
        agreed = max(i for i, p in enumerate(prefixes) if w["response"].startswith(p))
        assert agreed < len(margins) and margins[agreed] < 1e-3, (w["response"], want, margins)
