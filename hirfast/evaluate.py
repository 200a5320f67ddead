"""`hirfast eval`: generate with a model on IFEval, IFBench or MulDimIF and score the responses.

    hirfast eval --model PATH_OR_NAME --bench ifeval|ifbench|muldimif [--out DIR]
    hirfast eval --bench ifbench --responses FILE          # score existing responses, no model

Each benchmark prompt goes through the model's chat template as one user turn (with the
generation prompt), one response per prompt is generated with `hirfast.rollout.generate` (greedy
unless `--temperature` is set), and every constraint is checked with the C++ engine, strict and
loose, exactly as `hirfast verify` does: the same report is printed. The benchmark prompts ship
with the package (`hirfast/assets/benchmarks/`). `--out DIR` receives:

- `responses.jsonl`: `{"key", "prompt", "response"}` per prompt (a `hirfast verify --responses` file);
- `verdicts.jsonl`:  `{"key", "index", "instruction_id", "strict", "loose"}` per constraint;
- `report.txt`:      the printed report, with the model and settings at the top.

MulDimIF (`--bench muldimif`) has its own report and row format: see hirfast/eval_muldimif.py.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from importlib import resources

from tqdm import tqdm

from . import verify_cli

BENCHMARKS = {"ifeval": "ifeval_input_data.jsonl", "ifbench": "ifbench_test.jsonl",
              "muldimif": "muldimif_test.json"}
# Rows checked per call while scoring: small enough for the progress bar to move, large enough
# that the per-call overhead (about 50 us) stays negligible.
_SCORE_CHUNK = 64


def benchmark_path(bench: str) -> str:
    return os.fspath(resources.files("hirfast") / "assets" / "benchmarks" / BENCHMARKS[bench])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="PATH_OR_NAME",
                        help="a Hugging Face causal LM (local path, hub name or GGUF file); not needed with --responses")
    parser.add_argument("--bench", metavar="{" + ",".join(sorted(BENCHMARKS)) + ",bbh[:TASK,...]}",
                        help="the benchmark whose bundled prompts are used; bbh: BIG-Bench Hard's "
                             "held-out split (bbh-full: every example), all 27 tasks or those named")
    parser.add_argument("--input-data", metavar="FILE",
                        help="instead of --bench: prompts with constraints from a JSONL file (IFEval-style, "
                             "HIR-16K rows with type4 criteria, IF_multi_constraints)")
    parser.add_argument("--out", metavar="DIR",
                        help="where to write responses.jsonl, verdicts.jsonl and report.txt "
                             "(default: hirfast-out/eval-BENCH-TIMESTAMP)")
    parser.add_argument("--responses", metavar="FILE",
                        help="score these responses (JSONL rows {prompt, response}) instead of generating")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="sampling temperature; 0 (the default) is greedy decoding")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (default: off)")
    parser.add_argument("--max-new-tokens", type=int, default=4096, metavar="N",
                        help="most tokens per response (default: 4096, as HiR's evaluation scripts)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="most responses generated together; a finished one's place goes to the next "
                             "prompt (default: 64)")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampling seed (default: 0); with --temperature > 0 a response depends on the "
                             "seed and its prompt's place in the benchmark, not on --batch-size")
    parser.add_argument("--device", default="auto", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"],
                        help="model dtype (default: bfloat16 on a GPU, float32 on the CPU)")
    parser.add_argument("--system-prompt", metavar="TEXT",
                        help="a system turn before each prompt (default: none, as in the reference harnesses)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N prompts (a quick look)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker threads for checking (default: all cores)")
    from . import rewards
    rewards.add_arguments(parser)


def _error(message: str) -> int:
    print(f"hirfast eval: error: {message}", file=sys.stderr)
    return 2


def _check_args(args: argparse.Namespace) -> str | None:
    if (args.bench is None) == (args.input_data is None):
        return "give --bench NAME or --input-data FILE (one of them)"
    if args.responses is None and args.model is None:
        return "give --model to generate responses, or --responses FILE to score existing ones"
    if args.max_new_tokens < 1:
        return f"--max-new-tokens must be at least 1, got {args.max_new_tokens}"
    if args.batch_size < 1:
        return f"--batch-size must be at least 1, got {args.batch_size}"
    if args.temperature < 0:
        return f"--temperature must not be negative, got {args.temperature}"
    if not 0 < args.top_p <= 1:
        return f"--top-p must be in (0, 1], got {args.top_p}"
    if args.limit is not None and args.limit < 1:
        return f"--limit must be at least 1, got {args.limit}"
    if args.threads < 1:
        return f"--threads must be at least 1, got {args.threads}"
    return None


def load_model(name: str, device: str, dtype: str):
    """The tokenizer and the causal LM, on `device` in `dtype`, in eval mode."""
    import torch

    from . import models

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    tokenizer, model = models.load(name, dtype=dtype)
    return tokenizer, model.to(device).eval()


def chat_prompts(tokenizer, prompts: list[str], system_prompt: str | None) -> list[list[int]]:
    """Token ids of each prompt as one user turn of the tokenizer's chat template, followed by the
    generation prompt. The template writes its own special tokens (BOS included), so none are
    added on top."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template (tokenizer.chat_template is empty); "
                         "hirfast eval needs an instruction-tuned model's tokenizer")
    out = []
    for prompt in prompts:
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else [])
        messages.append({"role": "user", "content": prompt})
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        out.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return out


def stop_token_ids(tokenizer, model) -> list[int]:
    """The tokenizer's EOS and the model's generation-config EOS ids (chat models often end a turn
    with a token other than the tokenizer's EOS)."""
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(int(i) for i in source)
    return sorted(ids)


def generate_responses(tokenizer, model, rows, args) -> list[str]:
    """One response per row, in order, at most `args.batch_size` generated together."""
    return generate_texts(tokenizer, model, [r.prompt for r in rows],
                          [f"{r.where}: key {r.key!r}" for r in rows], args)


def generate_texts(tokenizer, model, prompts: list[str], labels: list[str], args) -> list[str]:
    """One response per user message in `prompts` (chat-templated, `args.system_prompt` first),
    in order; a prompt longer than the model takes is an error naming its label.

    All prompts go to one `rollout.generate` call with `args.batch_size` cache rows: when a
    response ends, its row takes the next waiting prompt (continuous batching), so the decode batch
    stays full until the prompts run out, instead of a batch of `args.batch_size` prompts decoding
    until its longest response ends. No log-probs are recorded (eval keeps only the text). On the
    CPU, fp32 linear layers run on oneDNN-packed weights meanwhile (`hirfast.cpu_linear`)."""
    import torch

    from . import cpu_linear, rollout

    token_prompts = chat_prompts(tokenizer, prompts, args.system_prompt)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None:
        for label, ids in zip(labels, token_prompts):
            if len(ids) >= limit:
                raise ValueError(f"{label}: the prompt is {len(ids)} tokens, the model "
                                 f"takes at most {limit} positions")
    stops = stop_token_ids(tokenizer, model)
    responses = []
    with (tqdm(total=len(token_prompts), desc="generating", unit="prompt") as bar, torch.inference_mode(),
          cpu_linear.packed_linears(model, rows=args.batch_size)):
        options = dict(n=1, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                       top_p=args.top_p, stop_token_ids=stops, seed=args.seed, record_logprobs=False,
                       progress=bar.update)
        try:
            result = rollout.generate(model, token_prompts, max_batch_size=args.batch_size, **options)
        except rollout.CacheBudgetError:
            # --batch-size rows do not fit the memory: as many rows as fit (the engine's default).
            result = rollout.generate(model, token_prompts, **options)
        for completions in result:
            ids = completions[0].token_ids
            if ids and ids[-1] in stops:
                ids = ids[:-1]
            responses.append(tokenizer.decode(ids, skip_special_tokens=True))
        bar.update(len(token_prompts) - bar.n)
    rollout.release(model)
    return responses


def score_with_progress(rows, responses, threads: int, verifier=None) -> verify_cli.Scored:
    """verify_cli.score over chunks of rows, with a progress bar; one Scored for all rows."""
    strict, loose, seconds = [], [], 0.0
    with tqdm(total=len(rows), desc="checking", unit="prompt") as bar:
        for start in range(0, len(rows), _SCORE_CHUNK):
            part = verify_cli.score(rows[start:start + _SCORE_CHUNK], responses[start:start + _SCORE_CHUNK],
                                    threads, verifier)
            strict += part.strict
            loose += part.loose
            seconds += part.seconds
            bar.update(len(part.rows))
    return verify_cli.Scored(rows, responses, strict, loose, seconds)


def write_outputs(out_dir: str, scored: verify_cli.Scored, header: str, report: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "responses.jsonl"), "w", encoding="utf-8") as f:
        for row, response in zip(scored.rows, scored.responses):
            f.write(json.dumps({"key": row.key, "prompt": row.prompt, "response": response},
                               ensure_ascii=False) + "\n")
    verify_cli.write_pairs(scored, os.path.join(out_dir, "verdicts.jsonl"))
    with open(os.path.join(out_dir, "report.txt"), "w", encoding="utf-8") as f:
        f.write(header + "\n\n" + report + "\n")


def main(args: argparse.Namespace) -> int:
    from . import bbh

    if args.bench is not None and bbh.is_bbh_bench(args.bench):
        return bbh.eval_main(args)
    if args.bench is not None and args.bench not in BENCHMARKS:
        return _error(f"--bench {args.bench!r}: expected one of {sorted(BENCHMARKS)} or bbh[:TASK,...]")
    problem = _check_args(args)
    if problem:
        return _error(problem)
    if args.bench == "muldimif":
        from . import eval_muldimif

        return eval_muldimif.main(args)
    try:
        from . import rewards
        rows = verify_cli.load_inputs(args.input_data or benchmark_path(args.bench),
                                      **rewards.load_options(args))
        if args.limit is not None:
            rows = rows[:args.limit]
        if args.responses is not None:
            responses = verify_cli.match_responses(rows, verify_cli.load_responses(args.responses),
                                                   args.responses)
        else:
            tokenizer, model = load_model(args.model, args.device, args.dtype)
            started = time.perf_counter()
            responses = generate_responses(tokenizer, model, rows, args)
            print(f"generated {len(responses)} responses in {time.perf_counter() - started:.1f} s")
        verifier = verify_cli.verifier_from_args(args, rows)
        try:
            scored = score_with_progress(rows, responses, args.threads, verifier)
        finally:
            if verifier is not None:
                verify_cli.print_reward_metrics(verifier)
                verifier.close()
    except (verify_cli.InputFileError, ValueError, OSError, RuntimeError) as e:
        return _error(str(e))
    bench = args.bench or os.path.basename(args.input_data)

    source = f"responses {args.responses}" if args.responses else (
        f"model {args.model}, temperature {args.temperature}, top_p {args.top_p}, "
        f"max_new_tokens {args.max_new_tokens}, seed {args.seed}")
    header = f"hirfast eval --bench {bench}: {len(rows)} prompts; {source}"
    report = verify_cli.report(scored)
    print(header)
    print(report)
    out_dir = args.out or os.path.join(
        "hirfast-out", f"eval-{bench}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    write_outputs(out_dir, scored, header, report)
    print(f"\nwrote responses.jsonl, verdicts.jsonl and report.txt to {out_dir}")
    return 0
