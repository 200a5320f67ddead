"""Rollout throughput: hirfast.rollout.generate against Hugging Face `generate(num_return_sequences=n)`.

Both engines get the same random-weight model, prompts and sampling settings (temperature 1.0, no
top-k/top-p) and generate a fixed number of tokens per sequence (no stop token, so lengths do not
depend on what is sampled). The figure is generated tokens per second, in `extra_info`.

- CPU: a tiny Llama, 8 prompts of 64 tokens x n=6 x 64 new tokens, on one thread (the development
  machine is shared; two threads made timings swing 30x). It runs anywhere and checks overheads and
  the saved prefills, not GPU speed.
- GPU (`-m gpu`): Qwen2.5-0.5B- and 1.5B-shaped models in bf16, 64 prompts of 128 tokens x n=6 x 512
  new tokens (the issue's setting). Each hirfast figure is also given as a fraction of the
  memory-bandwidth bound of decoding: every decode step must read the weights once and the keys and
  values of every live sequence, so at the GPU's peak bandwidth the step cannot take less than
  (weight bytes + KV bytes) / bandwidth (prefill is left out of the bound). The peak bandwidth is
  looked up from the device name, or given by HIRFAST_GPU_BANDWIDTH_GBPS (GB/s).

Run: `.venv/bin/python -m pytest bench/test_rollout_bench.py --benchmark-only` (add `-m gpu` for the
GPU cases only).
"""
import os

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from hirfast.rollout import generate, release

ENGINES = ["hirfast", "hf_generate"]

# Peak memory bandwidth in bytes/s by device name (vendor datasheets).
_PEAK_BANDWIDTH = [
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),  # SXM5, HBM3
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
]

# Qwen2.5-0.5B and -1.5B shapes (their config.json), random weights.
QWEN25 = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2),
}


def _peak_bandwidth():
    override = os.environ.get("HIRFAST_GPU_BANDWIDTH_GBPS")
    if override:
        return float(override) * 1e9
    name = torch.cuda.get_device_name(0)
    for key, value in _PEAK_BANDWIDTH:
        if key in name:
            return value
    return None


def _decode_bound_seconds(model, sequences, prompt_len, new_tokens, bandwidth):
    """Lower bound on the decode time at `bandwidth`: weights + the live KV read at every step."""
    config = model.config
    elem = next(model.parameters()).element_size()
    weights = sum(p.numel() for p in model.parameters()) * elem
    if not config.tie_word_embeddings:  # the input embedding is gathered, not read whole
        weights -= model.get_input_embeddings().weight.numel() * elem
    head_dim = config.hidden_size // config.num_attention_heads
    kv_per_token = config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * elem
    # decode step s (s = 1 .. new_tokens-1) reads prompt_len + s positions of every sequence
    kv = sum(sequences * (prompt_len + s) * kv_per_token for s in range(1, new_tokens))
    return (weights * (new_tokens - 1) + kv) / bandwidth


def _prompts(count, length, vocab, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (count, length), generator=generator)


def _run(engine, model, prompts, n, new_tokens):
    device = model.device
    if engine == "hirfast":
        rollout = generate(model, prompts.tolist(), n=n, max_new_tokens=new_tokens, temperature=1.0,
                           stop_token_ids=None, seed=0)
        tokens = sum(len(c.token_ids) for group in rollout for c in group)
    else:
        ids = prompts.to(device)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_k=0, top_p=1.0, num_return_sequences=n, max_new_tokens=new_tokens,
                             eos_token_id=None, pad_token_id=0)
        tokens = (out.shape[1] - ids.shape[1]) * out.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert tokens == prompts.shape[0] * n * new_tokens
    return tokens


def _measure(benchmark, engine, model, prompts, n, new_tokens, rounds):
    model.generation_config.eos_token_id = None
    tokens = benchmark.pedantic(_run, args=(engine, model, prompts, n, new_tokens), rounds=rounds,
                                warmup_rounds=1, iterations=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update({
        "baseline": "transformers generate(num_return_sequences=n), same model and settings",
        "engine": engine, "prompts": prompts.shape[0], "prompt_len": prompts.shape[1], "n": n,
        "new_tokens": new_tokens, "dtype": str(next(model.parameters()).dtype),
        "attn_implementation": model.config._attn_implementation,
        "sampling": "temperature=1.0, top_k=0, top_p=1.0, no stop token",
        "generated_tokens": tokens, "tokens_per_s": tokens / seconds, "timing": "median of rounds",
    })
    return tokens / seconds


@pytest.mark.parametrize("engine", ENGINES)
def test_rollout_cpu_tiny(benchmark, engine):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = LlamaForCausalLM(config).eval()
    prompts = _prompts(8, 64, config.vocab_size, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            _measure(benchmark, engine, model, prompts, n=6, new_tokens=64, rounds=5)
    finally:
        torch.set_num_threads(threads)
    benchmark.extra_info.update({"model": "llama h128 L4 heads 4/2 V1024 (random)", "torch_threads": 1})
    release(model)


@pytest.mark.gpu
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", sorted(QWEN25))
def test_rollout_gpu_qwen25(benchmark, shape, engine):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=None,
                         pad_token_id=None, **QWEN25[shape])
    model = Qwen2ForCausalLM(config).to("cuda", torch.bfloat16).eval()
    prompts, n, new_tokens = _prompts(64, 128, config.vocab_size, seed=1), 6, 512
    with torch.inference_mode():
        tokens_per_s = _measure(benchmark, engine, model, prompts, n=n, new_tokens=new_tokens, rounds=2)
    benchmark.extra_info["model"] = f"{shape}-shaped Qwen2 (random weights)"
    bandwidth = _peak_bandwidth()
    if bandwidth is not None:
        bound = _decode_bound_seconds(model, prompts.shape[0] * n, prompts.shape[1], new_tokens, bandwidth)
        bound_tokens_per_s = prompts.shape[0] * n * new_tokens / bound
        benchmark.extra_info.update({"peak_bandwidth_bytes_per_s": bandwidth,
                                     "bandwidth_bound_tokens_per_s": bound_tokens_per_s,
                                     "fraction_of_bandwidth_bound": tokens_per_s / bound_tokens_per_s})
    release(model)
    del model
    torch.cuda.empty_cache()


@pytest.mark.parametrize("record", ["sampled_only", "with_untruncated_and_entropy"])
@pytest.mark.parametrize("filters", ["none", "top_k50_top_p0.9"])
def test_sampling_record_cost_cpu(benchmark, record, filters):
    """What recording the untruncated log-prob and the entropy adds to one sampling step.

    Baseline: `record=sampled_only` (`sample_tokens(..., full=False)`, the sampled distribution's
    log-prob only). 48 rows (8 prompts x 6) of Qwen's 151,936-token vocabulary, fp32, one thread.
    """
    from hirfast.rollout_sampling import counter_uniforms, sample_tokens

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(48, 151_936, generator=g) * 3
    seq = torch.arange(48)
    uniforms = counter_uniforms(torch.tensor(1), seq, torch.zeros_like(seq))
    top_k, top_p = (0, 1.0) if filters == "none" else (50, 0.9)
    full = record != "sampled_only"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        benchmark.pedantic(sample_tokens, args=(logits, uniforms),
                           kwargs=dict(temperature=1.0, top_k=top_k, top_p=top_p, full=full),
                           rounds=20, warmup_rounds=2, iterations=1)
    finally:
        torch.set_num_threads(threads)
    benchmark.extra_info.update({"baseline": "record=sampled_only", "rows": 48, "vocab": 151_936,
                                 "top_k": top_k, "top_p": top_p, "torch_threads": 1})
