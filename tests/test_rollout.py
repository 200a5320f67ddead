"""Tests of hirfast.rollout.generate on tiny random models built from configs (nothing downloads).

References are independent of the engine: Hugging Face `generate` for greedy decoding, one full
forward of prompt + completion (the model's own attention, no cache) with Hugging Face's logits
warpers for log-probs and sampling sets, and a forward hook on the embeddings for what the model
actually ran.
"""
import weakref

import pytest
import torch
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)
from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

import hirfast.rollout as rollout_module
from hirfast.rollout import CacheBudgetError, generate, plan_cache, release
from hirfast.rollout_sampling import counter_uniforms, sample_tokens

VOCAB = 256
MAX_POSITIONS = 96
# initializer_range 0.1 instead of 0.02: logits spread enough that top-k/top-p sets are neither
# everything nor one token, and greedy paths are not decided by rounding.
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_POSITIONS,
              initializer_range=0.1, bos_token_id=None, eos_token_id=None, pad_token_id=None)

FAMILIES = {
    "llama": (LlamaForCausalLM, lambda: LlamaConfig(**COMMON)),
    # qkv biases; layer 1 uses a sliding window of 8 (layer_types mixes full and sliding layers)
    "qwen2": (Qwen2ForCausalLM, lambda: Qwen2Config(use_sliding_window=True, sliding_window=8,
                                                     max_window_layers=1, **COMMON)),
    # q/k RMSNorm, explicit head_dim
    "qwen3": (Qwen3ForCausalLM, lambda: Qwen3Config(head_dim=16, **COMMON)),
    # a sliding window of 8 on every layer, shorter than the long prompt below
    "mistral": (MistralForCausalLM, lambda: MistralConfig(sliding_window=8, **COMMON)),
}

# Mixed lengths, a duplicate (shares one prefill), and one longer than the sliding windows.
PROMPTS = [[3, 17, 45, 9], [200, 11], [3, 17, 45, 9], list(range(30, 51)), [77]]


def tiny_model(family: str):
    cls, make_config = FAMILIES[family]
    torch.manual_seed(1234)
    model = cls(make_config()).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def model(request):
    m = tiny_model(request.param)
    yield m
    release(m)


@pytest.fixture(scope="module")
def llama():
    m = tiny_model("llama")
    yield m
    release(m)


@pytest.fixture
def pad_decode_to_buckets(monkeypatch):
    """Calling it makes later engines decode the CUDA graphs' bucketed shapes (rows and key length
    rounded up) even when they run eagerly."""
    original_init = rollout_module._Engine.__init__

    def padded_init(self, *args, **kw):
        original_init(self, *args, **kw)
        self.pad_to_buckets = True

    return lambda: monkeypatch.setattr(rollout_module._Engine, "__init__", padded_init)


_HF_GREEDY = weakref.WeakKeyDictionary()


def hf_greedy(model, prompt, max_new_tokens, stop_token_ids=None):
    """Hugging Face greedy `generate` of one unpadded prompt (memoized: it is the slow part)."""
    memo = _HF_GREEDY.setdefault(model, {})
    key = (str(model.device), tuple(prompt), max_new_tokens, tuple(stop_token_ids or ()))
    if key not in memo:
        memo[key] = _hf_greedy(model, prompt, max_new_tokens, stop_token_ids)
    return memo[key]


def _hf_greedy(model, prompt, max_new_tokens, stop_token_ids):
    ids = torch.tensor([prompt], device=model.device)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=max_new_tokens, eos_token_id=stop_token_ids, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def reference_logprobs(model, prompt, completion, *, temperature, top_k, top_p):
    """log-probs of `completion` from one full forward, through Hugging Face's logits warpers."""
    ids = torch.tensor([prompt + completion], device=model.device)
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits[0, len(prompt) - 1:-1].float().cpu()
    warpers = [TemperatureLogitsWarper(temperature if temperature > 0 else 1.0)]
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    for warper in warpers:
        logits = warper(ids.cpu(), logits)
    return torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(completion)[:, None]).squeeze(1)


def embedding_calls(model):
    """Records the input_ids shape of every forward the model runs."""
    shapes = []
    handle = model.get_input_embeddings().register_forward_pre_hook(
        lambda module, args: shapes.append(tuple(args[0].shape)))
    return shapes, handle


# ---- exactness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("max_batch_size", [None, 3])
def test_greedy_equals_hf_generate(model, max_batch_size):
    rollout = generate(model, PROMPTS, n=2, max_new_tokens=20, temperature=0, stop_token_ids=None,
                       seed=0, max_batch_size=max_batch_size)
    assert len(rollout) == len(PROMPTS)
    for prompt, group in zip(PROMPTS, rollout):
        expected = hf_greedy(model, prompt, 20)
        assert len(expected) == 20
        for completion in group:
            assert completion.token_ids == expected
            assert completion.finish_reason == "length"


def test_greedy_with_stop_tokens_equals_hf_generate(model):
    # Stop tokens taken from the unconstrained greedy outputs, so that some completions do stop.
    free = [hf_greedy(model, p, 20) for p in PROMPTS]
    stops = sorted({free[0][5], free[1][2], free[3][0]})
    rollout = generate(model, PROMPTS, n=1, max_new_tokens=20, temperature=0, stop_token_ids=stops, seed=0)
    reasons = []
    for prompt, group in zip(PROMPTS, rollout):
        expected = hf_greedy(model, prompt, 20, stop_token_ids=stops)
        completion = group[0]
        assert completion.token_ids == expected
        reasons.append(completion.finish_reason)
        assert completion.finish_reason == ("stop" if expected[-1] in stops else "length")
    assert "stop" in reasons


def test_sliding_window_is_honoured():
    # The exactness tests above only have power over sliding windows if the window changes outputs.
    windowed = tiny_model("mistral")
    unwindowed = tiny_model("mistral")
    unwindowed.config.sliding_window = None
    prompt = PROMPTS[3]
    assert hf_greedy(windowed, prompt, 20) != hf_greedy(unwindowed, prompt, 20)
    ours = generate(windowed, [prompt], n=1, max_new_tokens=20, temperature=0, stop_token_ids=None, seed=0)
    assert ours[0][0].token_ids == hf_greedy(windowed, prompt, 20)
    release(windowed)


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 30, 1.0), (1.3, 0, 0.8),
                                                     (0.8, 20, 0.9), (0.0, 12, 0.95)])
def test_logprobs_equal_full_forward(model, temperature, top_k, top_p):
    rollout = generate(model, PROMPTS, n=2, max_new_tokens=12, temperature=temperature, top_k=top_k,
                       top_p=top_p, stop_token_ids=None, seed=7, max_batch_size=3)
    for prompt, group in zip(PROMPTS, rollout):
        for completion in group:
            assert completion.logprobs.dtype == torch.float32
            assert completion.logprobs.shape == (len(completion.token_ids),)
            expected = reference_logprobs(model, prompt, completion.token_ids, temperature=temperature,
                                          top_k=top_k, top_p=top_p)
            # -inf would mean a token outside the top-k/top-p set
            assert torch.isfinite(expected).all()
            assert torch.allclose(completion.logprobs, expected, rtol=0, atol=1e-4), \
                (completion.logprobs - expected).abs().max()


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 30, 1.0), (1.3, 0, 0.8),
                                                     (0.0, 12, 0.95)])
def test_untruncated_logprobs_and_entropies_equal_full_forward(llama, temperature, top_k, top_p):
    # pi_old for the trainer: the full temperature-scaled softmax at the drawn token, whatever
    # top-k/top-p drew it; the entropy of that softmax is HiR's replay score.
    rollout = generate(llama, PROMPTS, n=2, max_new_tokens=12, temperature=temperature, top_k=top_k,
                       top_p=top_p, stop_token_ids=None, seed=7, max_batch_size=3)
    t = temperature or 1.0
    truncated_somewhere = False
    for prompt, group in zip(PROMPTS, rollout):
        for c in group:
            ids = torch.tensor([prompt + c.token_ids])
            with torch.no_grad():
                logits = llama(ids, use_cache=False).logits[0, len(prompt) - 1:-1].double() / t
            logp = torch.log_softmax(logits, -1)
            expected = logp.gather(1, torch.tensor(c.token_ids)[:, None]).squeeze(1)
            entropy = -(logp.exp() * logp).sum(-1)
            assert c.full_logprobs.shape == c.entropies.shape == (len(c.token_ids),)
            assert torch.allclose(c.full_logprobs.double(), expected, atol=1e-4)
            assert torch.allclose(c.entropies.double(), entropy, atol=1e-4)
            truncated_somewhere |= bool((c.logprobs - c.full_logprobs).abs().max() > 1e-3)
    # the two records differ exactly when a filter is on
    assert truncated_somewhere == (top_k > 0 or top_p < 1.0)


def test_sampler_full_outputs_by_hand():
    logits = torch.tensor([[2.0, 1.0, float("-inf"), 0.5, 1.99]] * 64)
    seq = torch.arange(64)
    uniforms = counter_uniforms(torch.tensor(1), seq, torch.zeros_like(seq))
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.5, 2, 1.0), (2.0, 0, 0.6), (0.0, 3, 0.9)]:
        tokens, lp, full, entropy = sample_tokens(logits, uniforms, temperature=temperature,
                                                  top_k=top_k, top_p=top_p, full=True)
        again, lp_only = sample_tokens(logits, uniforms, temperature=temperature, top_k=top_k,
                                       top_p=top_p)
        assert torch.equal(tokens, again) and torch.equal(lp, lp_only)  # full= changes nothing else
        scaled = logits[0].double() / (temperature or 1.0)
        logp = torch.log_softmax(scaled, -1)
        p = logp.exp()
        h = -(p[p > 0] * logp[p > 0]).sum()  # the -inf logit has probability 0 and adds nothing
        assert torch.allclose(full.double(), logp[tokens], atol=1e-6)
        assert torch.allclose(entropy.double(), h.expand(64), atol=1e-6)
        if top_k or top_p < 1.0:
            assert (lp > full).all()  # renormalized over a kept set: larger than untruncated


# ---- sampling ------------------------------------------------------------------------------------

def test_seeded_sampling_is_reproducible_and_samples_differ(llama):
    kwargs = dict(n=4, max_new_tokens=10, temperature=1.0, stop_token_ids=None)
    first = generate(llama, PROMPTS, seed=11, **kwargs)
    again = generate(llama, PROMPTS, seed=11, **kwargs)
    other = generate(llama, PROMPTS, seed=12, **kwargs)
    # The draws depend on (seed, sequence, step) only: a small batch with continuous admission
    # samples the same tokens.
    narrow = generate(llama, PROMPTS, seed=11, max_batch_size=4, **kwargs)
    tokens = lambda r: [[c.token_ids for c in g] for g in r]  # noqa: E731
    assert tokens(first) == tokens(again) == tokens(narrow)
    for a, b, c in zip(first, again, narrow):
        for x, y, z in zip(a, b, c):
            assert torch.equal(x.logprobs, y.logprobs)
            assert torch.allclose(x.logprobs, z.logprobs, atol=1e-5)
    assert tokens(first) != tokens(other)
    for group in first:  # the n samples of one prompt differ from each other
        assert len({tuple(c.token_ids) for c in group}) == len(group)
    # the two copies of the duplicated prompt are different sequences too
    assert tokens(first)[0] != tokens(first)[2]


def _chi_square_p_value(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    statistic = ((counts - expected) ** 2 / expected).sum()
    dof = counts.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         statistic.double() / 2))


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, 6, 1.0), (1.0, 0, 0.5), (0.8, 20, 0.7)])
def test_top_k_top_p_sample_only_inside_their_set(llama, temperature, top_k, top_p):
    prompt, n = [9, 4, 151, 33], 3000
    rollout = generate(llama, [prompt], n=n, max_new_tokens=2, temperature=temperature, top_k=top_k,
                       top_p=top_p, stop_token_ids=None, seed=2024)
    sequences = torch.tensor([prompt + c.token_ids for c in rollout[0]])
    with torch.no_grad():
        logits = llama(sequences, use_cache=False).logits[:, len(prompt) - 1:-1].float()
    allowed = []
    for step in range(2):
        warped = logits[:, step]
        for warper in (TemperatureLogitsWarper(temperature), TopKLogitsWarper(top_k) if top_k else None,
                       TopPLogitsWarper(top_p) if top_p < 1 else None):
            if warper is not None:
                warped = warper(sequences, warped)
        allowed.append(warped)
        drawn = sequences[:, len(prompt) + step]
        # every draw of this step (first from the prefill, then from decode) is inside its set
        assert torch.isfinite(warped.gather(1, drawn[:, None])).all()
    # The first token of all n samples comes from one distribution: its frequencies must fit it.
    probs = torch.softmax(allowed[0][0], dim=-1).double()
    kept = torch.isfinite(allowed[0][0])
    assert 2 <= int(kept.sum()) < VOCAB  # the filter did something and left a choice
    counts = torch.bincount(sequences[:, len(prompt)], minlength=VOCAB).double()
    assert counts[~kept].sum() == 0
    assert _chi_square_p_value(counts[kept], probs[kept]) > 1e-3


def test_sampler_edges():
    logits = torch.tensor([[2.0, 1.0, float("-inf"), 0.5, 1.99]] * 4000)
    seq = torch.arange(4000)
    uniforms = counter_uniforms(torch.tensor(5), seq, torch.zeros_like(seq))
    assert ((uniforms > 0) & (uniforms < 1)).all()
    tokens, logprobs = sample_tokens(logits, uniforms, temperature=1.0, top_k=0, top_p=1.0)
    assert (tokens != 2).all()  # probability 0 is never drawn
    expected = torch.log_softmax(logits[0], -1)
    assert torch.allclose(logprobs, expected[tokens])
    # a tiny top_p keeps only the most likely token: the draw is the argmax with log-prob 0
    tokens, logprobs = sample_tokens(logits, uniforms, temperature=1.0, top_k=0, top_p=1e-6)
    assert (tokens == 0).all() and torch.allclose(logprobs, torch.zeros(4000))
    # greedy with top_k=2: argmax, log-prob renormalized over the two kept tokens at temperature 1
    tokens, logprobs = sample_tokens(logits, uniforms, temperature=0.0, top_k=2, top_p=1.0)
    assert (tokens == 0).all()
    assert torch.allclose(logprobs, torch.log_softmax(torch.tensor([2.0, 1.99]), -1)[0].expand(4000))


@pytest.mark.parametrize("vocab", [256, 300])  # a whole number of CDF blocks, and a padded one
def test_sampler_matches_its_distribution(vocab):
    generator = torch.Generator().manual_seed(0)
    row = torch.randn(vocab, generator=generator) * 1.5
    row[torch.randperm(vocab, generator=generator)[: vocab // 2]] = float("-inf")  # scattered zeros
    draws = 40000
    logits = row.expand(draws, vocab).contiguous()
    seq = torch.arange(draws)
    uniforms = counter_uniforms(torch.tensor(99), seq, torch.full_like(seq, 3))
    tokens, logprobs = sample_tokens(logits, uniforms, temperature=1.0, top_k=0, top_p=1.0)
    kept = torch.isfinite(row)
    counts = torch.bincount(tokens, minlength=vocab).double()
    assert counts[~kept].sum() == 0
    probs = torch.softmax(row, -1).double()
    assert torch.allclose(logprobs, torch.log_softmax(row, -1)[tokens])
    # tokens expected fewer than 5 times are pooled into one bin for the chi-square test
    rare = kept & (probs * draws < 5)
    bins_observed = torch.cat([counts[kept & ~rare], counts[rare].sum().view(1)])
    bins_probs = torch.cat([probs[kept & ~rare], probs[rare].sum().view(1)])
    assert _chi_square_p_value(bins_observed, bins_probs) > 1e-3


# ---- stops, lengths, edge cases -------------------------------------------------------------------

def test_stop_tokens_and_max_new_tokens_are_honoured(llama):
    stops = [5, 17, 60, 101, 130, 199, 240]
    rollout = generate(llama, PROMPTS, n=6, max_new_tokens=15, temperature=1.0, stop_token_ids=stops, seed=3)
    reasons = set()
    for group in rollout:
        for completion in group:
            ids = completion.token_ids
            assert 1 <= len(ids) <= 15
            assert not set(ids[:-1]) & set(stops)
            if completion.finish_reason == "stop":
                assert ids[-1] in stops
            else:
                assert completion.finish_reason == "length" and len(ids) == 15 and ids[-1] not in stops
            reasons.add(completion.finish_reason)
    assert reasons == {"stop", "length"}


def test_stop_token_as_first_token(llama):
    first = hf_greedy(llama, PROMPTS[1], 1)[0]
    rollout = generate(llama, [PROMPTS[1], PROMPTS[0]], n=2, max_new_tokens=8, temperature=0,
                       stop_token_ids=[first], seed=0)
    for completion in rollout[0]:
        assert completion.token_ids == [first] and completion.finish_reason == "stop"
        assert completion.logprobs.shape == (1,)
    assert rollout[1][0].token_ids == hf_greedy(llama, PROMPTS[0], 8, stop_token_ids=[first])


def test_trivial_requests(llama):
    shapes, handle = embedding_calls(llama)
    try:
        assert generate(llama, [], n=4, max_new_tokens=5, stop_token_ids=None, seed=0) == []
        empty = generate(llama, PROMPTS, n=2, max_new_tokens=0, stop_token_ids=None, seed=0)
        assert shapes == []  # nothing to generate: the model never runs
    finally:
        handle.remove()
    assert [[c.token_ids for c in g] for g in empty] == [[[], []]] * len(PROMPTS)
    assert all(c.finish_reason == "length" and c.logprobs.numel() == 0 for g in empty for c in g)
    single = generate(llama, [PROMPTS[0]], n=1, max_new_tokens=1, temperature=0, stop_token_ids=(), seed=0)
    assert single[0][0].token_ids == hf_greedy(llama, PROMPTS[0], 1)
    assert single[0][0].finish_reason == "length"


def test_generation_stops_at_max_positions(llama):
    prompt = list(range(1, MAX_POSITIONS - 3))  # room for 4 more positions
    rollout = generate(llama, [prompt, [1] * MAX_POSITIONS], n=1, max_new_tokens=10, temperature=0,
                       stop_token_ids=None, seed=0)
    assert rollout[0][0].token_ids == hf_greedy(llama, prompt, 4)
    assert rollout[0][0].finish_reason == "length"
    assert rollout[1][0].token_ids == [] and rollout[1][0].finish_reason == "length"


@pytest.mark.parametrize("prompts,kwargs,message", [
    ([[1] * (MAX_POSITIONS + 1)], {}, r"prompts\[0\] has 97 tokens, more than the model's max_position"),
    ([[1, 2], []], {}, r"prompts\[1\] is empty"),
    ([[1, 2], [3, VOCAB]], {}, r"prompts\[1\]\[1\] = 256 is outside the vocabulary"),
    ([[1, 2.5]], {}, r"prompts\[0\]\[1\] is 2.5"),
    ("abc", {}, "prompts must be a list"),
    ([[1]], {"n": 0}, "n must be"),
    ([[1]], {"max_new_tokens": -1}, "max_new_tokens must be"),
    ([[1]], {"temperature": -0.5}, "temperature must be"),
    ([[1]], {"top_p": 0.0}, "top_p must be"),
    ([[1]], {"top_k": -1}, "top_k must be"),
    ([[1]], {"stop_token_ids": [VOCAB + 3]}, "stop_token_ids contains 259"),
])
def test_bad_requests_raise_clear_errors(llama, prompts, kwargs, message):
    args = dict(n=2, max_new_tokens=4, stop_token_ids=None, seed=0)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        generate(llama, prompts, **args)


def test_model_state_is_restored(llama):
    llama.train()
    before = llama.config._attn_implementation
    try:
        generate(llama, PROMPTS[:2], n=2, max_new_tokens=3, stop_token_ids=None, seed=0)
        assert llama.training
        assert llama.config._attn_implementation == before
        assert llama.model.layers[0].self_attn.config._attn_implementation == before
    finally:
        llama.eval()


# ---- KV-cache reuse -------------------------------------------------------------------------------

def test_prefill_runs_once_per_distinct_prompt_and_finished_rows_leave(llama):
    prompts = [[5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 8, 9], [40, 41, 42, 43, 44, 45, 46, 47, 48]]
    stops = [13, 77, 150, 201]
    shapes, handle = embedding_calls(llama)
    try:
        rollout = generate(llama, prompts, n=4, max_new_tokens=12, temperature=1.0, stop_token_ids=stops, seed=5)
    finally:
        handle.remove()
    prefills = [s for s in shapes if s[0] == 1 and s[1] > 1]
    decodes = [s for s in shapes if s[1] == 1]
    assert len(prefills) + len(decodes) == len(shapes)
    # all distinct prompts in one packed forward, each prompt's tokens once (HF would run 16 prompts)
    assert len(prefills) == 1 and prefills[0][1] == 5 + 7 + 9
    assert rollout.stats.prefill_tokens == 21 and rollout.stats.distinct_prompts == 3
    # the decode batch holds exactly the unfinished sequences: at decode step s (making token s+1)
    # that is every completion longer than s tokens
    lengths = [len(c.token_ids) for g in rollout for c in g]
    assert min(lengths) < 12  # some finished early, so the batch had to shrink
    expected = [sum(length > s for length in lengths) for s in range(1, 12)]
    expected = [b for b in expected if b > 0]
    assert [s[0] for s in decodes] == expected


def test_prefill_count_with_continuous_batching(llama):
    prompts = [[i, i + 1, i + 2] for i in range(10, 16)]
    shapes, handle = embedding_calls(llama)
    try:
        rollout = generate(llama, prompts, n=3, max_new_tokens=4, temperature=1.0, stop_token_ids=None,
                           seed=1, max_batch_size=7)
    finally:
        handle.remove()
    prefill_tokens = sum(s[1] for s in shapes if s[1] > 1)
    assert prefill_tokens == 3 * len(prompts)  # once per prompt, over several admissions
    assert max(s[0] for s in shapes if s[1] == 1) <= 6  # two groups of 3 fit in 7 rows
    assert rollout.stats.prefill_calls > 1


def test_padded_decode_batches_match_exact_ones(llama, pad_decode_to_buckets):
    """The CUDA-graph path decodes bucketed shapes: rows rounded up (idle rows past the live batch)
    and keys read up to a whole bucket of positions. Run those shapes eagerly on the CPU."""
    kwargs = dict(n=3, max_new_tokens=14, temperature=1.0, top_k=50, stop_token_ids=[5, 17, 60, 101, 130],
                  seed=4, max_batch_size=7, keep_cache=False)
    exact = generate(llama, PROMPTS, **kwargs)
    pad_decode_to_buckets()
    padded = generate(llama, PROMPTS, **kwargs)
    assert {c.finish_reason for g in exact for c in g} == {"stop", "length"}  # the batch shrank
    for a, b in zip(exact, padded):
        for x, y in zip(a, b):
            assert x.token_ids == y.token_ids and x.finish_reason == y.finish_reason
            assert torch.allclose(x.logprobs, y.logprobs, atol=1e-5)
            assert torch.allclose(x.full_logprobs, y.full_logprobs, atol=1e-5)
            assert torch.allclose(x.entropies, y.entropies, atol=1e-4)


# ---- memory planning ------------------------------------------------------------------------------

def test_plan_cache_counts_bytes_and_fits_budget(llama):
    config = llama.config
    per_token = 2 * 2 * 2 * 16 * 4  # layers x (K, V) x kv_heads x head_dim x fp32
    per_row = per_token * 40 + VOCAB * 4 * 4
    plan = plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.float32)
    assert (plan.slots, plan.bytes_per_token, plan.cache_bytes) == (24, per_token, 24 * 40 * per_token)
    plan = plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.float32,
                      budget_bytes=10 * per_row + 5)
    assert plan.slots == 10 and plan.total_bytes <= 10 * per_row + 5
    bf16 = plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.bfloat16)
    assert bf16.bytes_per_token == per_token // 2
    with pytest.raises(CacheBudgetError, match="cannot hold one prompt's n=4 samples"):
        plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.float32, budget_bytes=3 * per_row)
    with pytest.raises(CacheBudgetError, match="max_batch_size=16 x max_len=40 needs"):
        plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.float32,
                   max_batch_size=16, budget_bytes=10 * per_row)
    with pytest.raises(CacheBudgetError, match="max_batch_size=3 is smaller than n=4"):
        plan_cache(config, sequences=24, group_size=4, max_len=40, dtype=torch.float32, max_batch_size=3)


def test_generate_within_a_small_budget_matches_unbounded(llama):
    kwargs = dict(n=3, max_new_tokens=8, temperature=1.0, stop_token_ids=None, seed=9)
    unbounded = generate(llama, PROMPTS, **kwargs)
    # room for one group (3 rows) of the longest prompt (21 + 8 - 1 positions) and a bit more
    row = 2 * 2 * 2 * 16 * 4 * 28 + VOCAB * 4 * 4
    bounded = generate(llama, PROMPTS, cache_budget_bytes=4 * row, keep_cache=False, **kwargs)
    assert bounded.stats.slots == 4 and unbounded.stats.slots == 15
    assert [[c.token_ids for c in g] for g in bounded] == [[c.token_ids for c in g] for g in unbounded]
    with pytest.raises(CacheBudgetError, match="cannot hold one prompt's n=3"):
        generate(llama, PROMPTS, cache_budget_bytes=2 * row, **kwargs)


# ---- GPU: static cache + CUDA-graph decode --------------------------------------------------------

@pytest.mark.gpu
def test_cuda_graph_greedy_equals_hf_generate_on_gpu():
    model = tiny_model("qwen2").cuda()
    rollout = generate(model, PROMPTS, n=2, max_new_tokens=20, temperature=0, stop_token_ids=None,
                       seed=0, use_cuda_graphs=True)
    assert rollout.stats.cuda_graphs_captured > 0
    for prompt, group in zip(PROMPTS, rollout):
        expected = hf_greedy(model, prompt, 20)
        assert all(c.token_ids == expected for c in group)
    again = generate(model, PROMPTS, n=2, max_new_tokens=20, temperature=0, stop_token_ids=None, seed=0)
    assert again.stats.cuda_graphs_captured == 0  # the graphs of the first call are replayed
    release(model)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_graph_sampling_equals_eager_on_gpu(dtype, pad_decode_to_buckets):
    model = tiny_model("llama").to("cuda", dtype)
    kwargs = dict(n=5, max_new_tokens=24, temperature=1.0, top_k=40, top_p=0.9, stop_token_ids=[7, 99],
                  seed=3, max_batch_size=12, keep_cache=False)
    graphed = generate(model, PROMPTS, use_cuda_graphs=True, **kwargs)
    assert graphed.stats.cuda_graphs_captured > 0
    # The eager reference runs the graphs' bucketed shapes, so both run the same kernels and bf16
    # rounding cannot move a draw across a CDF boundary.
    pad_decode_to_buckets()
    eager = generate(model, PROMPTS, use_cuda_graphs=False, **kwargs)
    for a, b in zip(graphed, eager):
        for x, y in zip(a, b):
            assert x.token_ids == y.token_ids and x.finish_reason == y.finish_reason
            assert torch.allclose(x.logprobs, y.logprobs, atol=1e-5)
    if dtype == torch.float32:
        for prompt, group in zip(PROMPTS, graphed):
            for completion in group:
                expected = reference_logprobs(model, prompt, completion.token_ids, temperature=1.0,
                                              top_k=40, top_p=0.9)
                assert torch.allclose(completion.logprobs, expected, atol=1e-4)
