"""Training forward + backward throughput: padded vs packed vs packed with shared prompts.

One timed round is one full training pass over a step's rows: every micro-batch's forward, the
response log-probs through ``hirfast.ops.linear_logprobs``, a token-mean loss and its backward
(no optimizer step). Compared in one run, on the same rows and the same token budget:

- ``padded_sdpa``: the baseline. Rows in rollout order, right-padded to the longest row of their
  micro-batch (as many rows as fit ``rows * longest <= budget``), transformers' SDPA attention with
  its padding mask; the hidden states of the response positions go through the same
  ``linear_logprobs`` as the packed runs, so only the packing differs.
- ``packed[<backend>]``: ``hirfast.packing.pack(share_prompts=False)`` + ``score_packed``.
- ``packed_shared[<backend>]``: the same with shared prompts (each group's prompt, and the query
  prefix of its replays, computed once).

Rows follow the issue's instruction-following mix: per task a prompt of 100-400 tokens, m = 6
responses of 30-1,500 tokens (log-normal, median ~300) and k = 2 replays whose prompt keeps the
query (the first 60% of the prompt) and a shorter constraint tail, replaying two of the responses.

Reported in extra_info: ``row_tokens_per_s`` (prompt + response tokens of every row, counted as if
each row were computed alone, per second: the same numerator for every mode, so the ratios are
speed-ups), and ``mfu``, the model FLOPs the mode must execute (``ModelFlops``: the linear layers
for every non-pad token it computes, causal attention for the (query, key) pairs it needs, the
lm_head for the response tokens; x3 for forward + backward; padding not counted) over the time,
divided by the GPU's dense bf16 peak (989 TFLOP/s for an H100 SXM or H200). MFU is not given on
a CPU.

GPU cases (marked ``gpu``): Qwen2.5-1.5B and -0.5B shapes with random weights, bf16. The small
``cpu`` case runs anywhere: a tiny model, fp32, the mix scaled down by 8 in length.
"""
import math
import random

import pytest
import torch

from hirfast import attention, packing
from hirfast.ops import linear_logprobs

transformers = pytest.importorskip("transformers")

SHAPES = {
    # Qwen2.5 shapes (from the published configs): hidden, layers, heads, kv heads, MLP, vocab.
    "qwen2.5-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, intermediate_size=8960, vocab_size=151_936,
                         tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, vocab_size=151_936,
                         tie_word_embeddings=True),
    "cpu-tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=256, vocab_size=2048,
                     tie_word_embeddings=True),
}
# Dense bf16 tensor-core peaks, FLOP/s, by device name.
PEAK_FLOPS = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def instruction_following_mix(tasks, seed, vocab, scale=1, m=6, k=2):
    """Rows of `tasks` HiR groups; `scale` divides every length (for the CPU case)."""
    rng = random.Random(seed)
    prompts, responses = [], []
    for _ in range(tasks):
        prompt = [rng.randrange(vocab) for _ in range(rng.randint(100, 400) // scale)]
        originals = [[rng.randrange(vocab) for _ in range(
            min(1500, max(30, int(rng.lognormvariate(math.log(300), 0.8)))) // scale)]
            for _ in range(m)]
        prompts += [prompt] * m
        responses += originals
        query = prompt[:int(0.6 * len(prompt))]
        for j in range(k):
            tail = prompt[len(query):]
            kept = tail[:max(1, int(len(tail) * rng.uniform(0.2, 0.7)))]
            prompts.append(query + kept)
            responses.append(originals[j])
    return prompts, responses


def build_model(shape, device, dtype):
    config = transformers.Qwen2Config(**SHAPES[shape], max_position_embeddings=4096,
                                      attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.Qwen2ForCausalLM(config)
    return model.to(dtype).train()


def padded_micro_batches(prompts, responses, budget):
    batches, current = [], []
    for row in range(len(prompts)):
        longest = max([len(prompts[r]) + len(responses[r]) for r in current + [row]])
        if current and longest * (len(current) + 1) > budget:
            batches.append(current)
            current = []
        current.append(row)
    return batches + [current]


def padded_work(prompts, responses, budget):
    """(micro-batches, tokens with pads, causal pairs with pads) of the padded baseline."""
    batches = padded_micro_batches(prompts, responses, budget)
    longest = [max(len(prompts[r]) + len(responses[r]) for r in rows) for rows in batches]
    tokens = sum(n * len(rows) for n, rows in zip(longest, batches))
    pairs = sum(packing.causal_attention_pairs(n) * len(rows) for n, rows in zip(longest, batches))
    return len(batches), tokens, pairs


def padded_step(model, prompts, responses, budget, device):
    weight = model.get_output_embeddings().weight
    plans = []
    for rows in padded_micro_batches(prompts, responses, budget):
        longest = max(len(prompts[r]) + len(responses[r]) for r in rows)
        ids = torch.zeros(len(rows), longest, dtype=torch.long)
        mask = torch.zeros(len(rows), longest, dtype=torch.long)
        flat_positions, targets = [], []
        for i, r in enumerate(rows):
            full = prompts[r] + responses[r]
            ids[i, :len(full)] = torch.tensor(full)
            mask[i, :len(full)] = 1
            start = i * longest + len(prompts[r]) - 1
            flat_positions += range(start, start + len(responses[r]))
            targets += responses[r]
        plans.append((ids.to(device), mask.to(device), torch.tensor(flat_positions, device=device),
                      torch.tensor(targets, device=device)))
    total = sum(len(r) for r in responses)

    def step():
        for ids, mask, positions, targets in plans:
            hidden = model.base_model(input_ids=ids, attention_mask=mask,
                                      use_cache=False).last_hidden_state
            hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)
            logprobs = linear_logprobs(hidden, weight, targets)
            (-logprobs.sum() / total).backward()
    return step


def packed_step(model, batches, backend):
    total = sum(sum(b.response_lengths) for b in batches)

    def step():
        for batch in batches:
            logprobs = packing.score_packed(model, batch, backend=backend)
            (-torch.cat(logprobs).sum() / total).backward()
    return step


def run_case(benchmark, shape, mode, backend, device, dtype, tasks, scale, budget, rounds):
    model = build_model(shape, device, dtype)
    vocab = model.config.vocab_size
    prompts, responses = instruction_following_mix(tasks, seed=0, vocab=vocab, scale=scale)
    flops = packing.ModelFlops.from_config(model.config)
    row_tokens = sum(len(p) + len(r) for p, r in zip(prompts, responses))
    response_tokens = sum(len(r) for r in responses)
    if mode == "padded_sdpa":
        step = padded_step(model, prompts, responses, budget, device)
        pairs = sum(packing.causal_attention_pairs(len(p) + len(r))
                    for p, r in zip(prompts, responses))
        micro_batches, padded_tokens, _ = padded_work(prompts, responses, budget)
        computed_tokens = row_tokens  # MFU counts useful work: the pads are left out
        benchmark.extra_info["padded_tokens"] = padded_tokens
    else:
        # The sharing floor shrinks with the lengths, so the scaled-down CPU mix shares alike.
        batches = packing.pack(prompts, responses, max_tokens_per_batch=budget,
                               share_prompts=mode == "packed_shared",
                               min_shared_prefix=max(1, packing.DEFAULT_MIN_SHARED_PREFIX // scale),
                               attention_cost_weight=flops.attention_cost_weight)
        batches = [b.to(device) for b in batches]
        step = packed_step(model, batches, backend)
        pairs = sum(b.attention_pairs for b in batches)
        computed_tokens, micro_batches = sum(b.num_tokens for b in batches), len(batches)
    step_flops = 3 * flops.forward(computed_tokens, pairs, response_tokens)

    def timed():
        model.zero_grad(set_to_none=True)
        step()
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update(
        shape=shape, mode=mode, backend=backend, dtype=str(dtype), threads=torch.get_num_threads(),
        rows=len(prompts),
        tasks=tasks, row_tokens=row_tokens, computed_tokens=computed_tokens,
        response_tokens=response_tokens, budget_tokens=budget, micro_batches=micro_batches,
        step_matmul_flops=step_flops, baseline="padded_sdpa")
    if benchmark.stats is not None:
        # From the mean and from the fastest round (the least disturbed on a shared machine).
        for suffix, seconds in (("", benchmark.stats.stats.mean),
                                ("_best", benchmark.stats.stats.min)):
            benchmark.extra_info["row_tokens_per_s" + suffix] = row_tokens / seconds
            if device == "cuda":
                name = torch.cuda.get_device_name(0)
                peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
                if peak is not None:
                    benchmark.extra_info["mfu" + suffix] = step_flops / seconds / peak


def gpu_cases():
    if not torch.cuda.is_available():
        backends = ["flash_attn", "torch_varlen", "xformers"]
    else:
        backends = [b for b in ("flash_attn", "torch_varlen", "xformers")
                    if attention.backend_unavailable_reason(b, "cuda", torch.bfloat16) is None]
    cases = []
    for shape in ("qwen2.5-1.5b", "qwen2.5-0.5b"):
        cases.append((shape, "padded_sdpa", "-"))
        for backend in backends:
            cases += [(shape, "packed", backend), (shape, "packed_shared", backend)]
    return cases


@pytest.mark.gpu
@pytest.mark.parametrize("shape, mode, backend", gpu_cases(),
                         ids=[f"{s}-{m}[{b}]" for s, m, b in gpu_cases()])
def test_packing_train_step_gpu(benchmark, shape, mode, backend):
    # 16 tasks x 8 rows (~80k row tokens per step); an 8,192-token micro-batch keeps the 1.5B
    # model's activations (and the torch twin's fp32 log-softmax) within an H100's 80 GB.
    run_case(benchmark, shape, mode, backend, "cuda", torch.bfloat16, tasks=16, scale=1,
             budget=8192, rounds=3)


@pytest.mark.parametrize("mode, backend", [("padded_sdpa", "-"), ("packed", "sdpa_reference"),
                                           ("packed_shared", "sdpa_reference")],
                         ids=["padded_sdpa", "packed[sdpa_reference]",
                              "packed_shared[sdpa_reference]"])
def test_packing_train_step_cpu(benchmark, mode, backend):
    # One thread: on a small shared CPU, timings in one thread are the steadiest.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_case(benchmark, "cpu-tiny", mode, backend, "cpu", torch.float32, tasks=8, scale=8,
                 budget=1024, rounds=7)
    finally:
        torch.set_num_threads(threads)


def work_counts(shape="qwen2.5-1.5b", tasks=16, budget=8192, seed=0):
    """What each mode computes for the GPU cases' rows (exact, no timing, any machine): tokens
    through the layers (pads included for padded), micro-batches, and training matmul FLOPs
    counted as in the MFU (padded: its pads' linear layers and the full causal square of each
    padded row; packed: as executed)."""
    config = transformers.Qwen2Config(**SHAPES[shape])
    flops = packing.ModelFlops.from_config(config)
    prompts, responses = instruction_following_mix(tasks, seed=seed, vocab=config.vocab_size)
    response_tokens = sum(len(r) for r in responses)
    micro_batches, padded_tokens, padded_pairs = padded_work(prompts, responses, budget)
    out = {"padded_sdpa": (padded_tokens, micro_batches,
                           3 * flops.forward(padded_tokens, padded_pairs, response_tokens))}
    for mode in ("packed", "packed_shared"):
        batches = packing.pack(prompts, responses, max_tokens_per_batch=budget,
                               share_prompts=mode == "packed_shared",
                               attention_cost_weight=flops.attention_cost_weight)
        tokens = sum(b.num_tokens for b in batches)
        pairs = sum(b.attention_pairs for b in batches)
        out[mode] = (tokens, len(batches), 3 * flops.forward(tokens, pairs, response_tokens))
    row_tokens = sum(len(p) + len(r) for p, r in zip(prompts, responses))
    return row_tokens, out


if __name__ == "__main__":
    for shape in ("qwen2.5-1.5b", "qwen2.5-0.5b"):
        row_tokens, counts = work_counts(shape)
        print(f"{shape}: {row_tokens} row tokens, budget 8192")
        for mode, (tokens, micro_batches, step_flops) in counts.items():
            print(f"  {mode:14s} tokens {tokens:7d} ({tokens / row_tokens:.2f}x rows)  "
                  f"micro-batches {micro_batches:3d}  train FLOPs {step_flops / 1e12:7.1f} T")
