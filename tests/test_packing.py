"""hirfast.packing: layout, micro-batches, shared prompts, and exact scoring with tiny HF models.

The reference for every score is the model itself run on one row at a time, unpadded, with
transformers' own SDPA attention: log_softmax(logits)[prompt_len - 1 + j, response[j]].
"""
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hirfast import packing
from hirfast.ops import IGNORE_INDEX

transformers = pytest.importorskip("transformers")

VOCAB = 101  # odd on purpose
TOL = 1e-5


def tiny_model(family: str, **overrides):
    """A 2-layer model of `family` with random weights, fp32, transformers' SDPA attention."""
    common = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=512,
                  attn_implementation="sdpa")
    common.update(overrides)
    if family == "llama":
        config = transformers.LlamaConfig(**common)
        cls = transformers.LlamaForCausalLM
    elif family == "qwen2":
        config = transformers.Qwen2Config(**common, tie_word_embeddings=True)
        cls = transformers.Qwen2ForCausalLM
    elif family == "qwen3":
        config = transformers.Qwen3Config(**common, head_dim=16)
        cls = transformers.Qwen3ForCausalLM
    elif family == "mistral":
        config = transformers.MistralConfig(**common)
        cls = transformers.MistralForCausalLM
    else:
        raise AssertionError(family)
    torch.manual_seed(1234)
    model = cls(config).float()
    # Random init makes near-uniform logits; scale the head so log-probs spread like a real model's.
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8.0)
    return model.eval()


def hir_rows(seed: int, groups: int = 3, m: int = 4, k: int = 2, max_response: int = 24):
    """HiR-like rows: per task, m originals share the prompt; k replays keep the query and a
    subset of the constraints (so they share only the query prefix); replays reuse responses."""
    rng = random.Random(seed)
    header = [3, 5, 7]  # a chat header every prompt starts with (shorter than min_shared_prefix)
    prompts, responses = [], []
    for _ in range(groups):
        query = [rng.randrange(10, VOCAB) for _ in range(rng.randint(14, 30))]
        constraints = [[rng.randrange(10, VOCAB) for _ in range(rng.randint(3, 8))]
                       for _ in range(3)]
        prompt = header + query + sum(constraints, []) + [1, 2]
        originals = [[rng.randrange(VOCAB) for _ in range(rng.randint(1, max_response))]
                     for _ in range(m)]
        prompts += [prompt] * m
        responses += originals
        for j in range(k):
            kept = constraints[1:] if j % 2 == 0 else constraints[2:]
            prompts.append(header + query + sum(kept, []) + [1, 2])
            responses.append(originals[j])
    return prompts, responses


def rowwise_logprobs(model, prompts, responses):
    out = []
    for prompt, response in zip(prompts, responses):
        ids = torch.tensor([prompt + response])
        logp = model(input_ids=ids).logits[0].float().log_softmax(-1)
        positions = torch.arange(len(prompt) - 1, len(prompt) + len(response) - 1)
        out.append(logp[positions, torch.tensor(response)])
    return out


def weighted_sum(logprobs, seed=0):
    """A token-mean loss, as the trainer's, with random per-token weights so that no gradient
    term can cancel by symmetry (gradients are then O(1), so 1e-5 is a meaningful fp32 bound)."""
    g = torch.Generator().manual_seed(seed)
    tokens = sum(lp.numel() for lp in logprobs)
    return sum((lp * torch.rand(lp.shape, generator=g)).sum() for lp in logprobs) / tokens


def grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()
            if p.grad is not None}


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def model(request):
    return tiny_model(request.param)


# --- exactness against rows computed alone ------------------------------------------------------

@pytest.mark.parametrize("share", [True, False], ids=["shared", "unshared"])
def test_packed_logprobs_and_grads_equal_rows_alone(model, share):
    prompts, responses = hir_rows(seed=1)
    reference = rowwise_logprobs(model, prompts, responses)
    reference_grads = grads(model, weighted_sum(reference))

    # A budget of 160 tokens forces several micro-batches and splits a group's shared prompt.
    packed = packing.score(model, prompts, responses, max_tokens_per_batch=160,
                           share_prompts=share, min_shared_prefix=8)
    packed_grads = grads(model, weighted_sum(packed))

    assert len(packed) == len(reference)
    for row, (got, want) in enumerate(zip(packed, reference)):
        assert got.dtype == torch.float32 and got.shape == want.shape, row
        assert (got - want).abs().max().item() <= TOL, row
    assert packed_grads.keys() == reference_grads.keys()
    for name, want in reference_grads.items():
        assert (packed_grads[name] - want).abs().max().item() <= TOL, name


def test_shared_prompts_equal_unshared_and_compute_fewer_tokens(model):
    prompts, responses = hir_rows(seed=2)
    batches = packing.pack(prompts, responses, max_tokens_per_batch=10_000, min_shared_prefix=8)
    assert len(batches) == 1
    assert batches[0].num_tokens < 0.6 * batches[0].num_row_tokens  # the prompts were shared

    shared = packing.score(model, prompts, responses, max_tokens_per_batch=10_000,
                           min_shared_prefix=8)
    shared_grads = grads(model, weighted_sum(shared, seed=3))
    unshared = packing.score(model, prompts, responses, max_tokens_per_batch=10_000,
                             share_prompts=False)
    unshared_grads = grads(model, weighted_sum(unshared, seed=3))
    for a, b in zip(shared, unshared):
        assert (a - b).abs().max().item() <= TOL
    for name, b in unshared_grads.items():
        assert (shared_grads[name] - b).abs().max().item() <= TOL, name


@pytest.mark.parametrize("family", ["qwen3", "mistral"])
def test_other_families_run_unmodified_on_packed_batches(family):
    # Mistral with a 6-token sliding window: rows are longer, so the window binds.
    model = tiny_model(family, **({"sliding_window": 6} if family == "mistral" else {}))
    prompts, responses = hir_rows(seed=4, groups=2)
    with torch.no_grad():
        reference = rowwise_logprobs(model, prompts, responses)
        packed = packing.score(model, prompts, responses, max_tokens_per_batch=400,
                               min_shared_prefix=8)
    for got, want in zip(packed, reference):
        assert (got - want).abs().max().item() <= TOL


def test_entropy_and_temperature_match_rows_alone():
    model = tiny_model("llama")
    prompts, responses = hir_rows(seed=5, groups=1)
    with torch.no_grad():
        logprobs, entropies = packing.score(model, prompts, responses, max_tokens_per_batch=400,
                                            min_shared_prefix=8, temperature=0.7,
                                            return_entropy=True)
        for prompt, response, lp, ent in zip(prompts, responses, logprobs, entropies):
            logits = model(input_ids=torch.tensor([prompt + response])).logits[0] / 0.7
            logp = logits.log_softmax(-1)[len(prompt) - 1:-1]
            assert (lp - logp.gather(1, torch.tensor(response)[:, None])[:, 0]).abs().max() <= TOL
            assert (ent - (-(logp.exp() * logp).sum(-1))).abs().max() <= TOL


def test_response_hidden_feeds_the_fused_policy_loss():
    # The trainer's fused path: policy_loss on the packed response hidden states, per-sequence
    # means over response_cu_seqlens. With old log-probs = current ones, its gradient is that of
    # -sum_seq mean_token(A * logprob) / B, computed here from rows run alone.
    from hirfast.ops import policy_loss

    model = tiny_model("qwen2")
    prompts, responses = hir_rows(seed=11)
    g = torch.Generator().manual_seed(0)
    advantages = [torch.randn(len(r), generator=g) for r in responses]
    reference = rowwise_logprobs(model, prompts, responses)
    reference_loss = -sum((a * lp).mean() for a, lp in zip(advantages, reference)) / len(prompts)
    reference_grads = grads(model, reference_loss)

    model.zero_grad(set_to_none=True)
    for batch in packing.pack(prompts, responses, max_tokens_per_batch=200, min_shared_prefix=8):
        hidden = packing.response_hidden(model, batch)
        batch_advantages = torch.cat([advantages[r] for r in batch.rows])
        loss, _ = policy_loss(hidden, packing.lm_head_weight(model), batch.response_targets,
                              batch_advantages, cu_seqlens=batch.response_cu_seqlens,
                              loss_agg="seq-mean-token-mean")
        (loss * len(batch.rows) / len(prompts)).backward()
    for name, want in reference_grads.items():
        got = dict(model.named_parameters())[name].grad
        assert (got - want).abs().max().item() <= TOL, name


def test_changing_one_row_changes_no_other_row():
    model = tiny_model("llama")
    prompts, responses = hir_rows(seed=6)
    with torch.no_grad():
        before = packing.score(model, prompts, responses, max_tokens_per_batch=10_000,
                               min_shared_prefix=8)
        changed = [list(r) for r in responses]
        changed[5] = [(t + 1) % VOCAB for t in changed[5]]  # same length: same kernel shapes
        after = packing.score(model, prompts, changed, max_tokens_per_batch=10_000,
                              min_shared_prefix=8)
        changed[5] = changed[5] + [4, 4, 4]  # another length: the packed shapes change
        longer = packing.score(model, prompts, changed, max_tokens_per_batch=10_000,
                               min_shared_prefix=8)
    assert not torch.equal(before[5], after[5])
    for row in range(len(prompts)):
        if row != 5:
            assert torch.equal(before[row], after[row]), row
            assert (before[row] - longer[row]).abs().max().item() <= 1e-6, row


def test_empty_response_gives_empty_tensor_and_is_not_packed():
    model = tiny_model("llama")
    prompts = [[1, 2, 3], [4, 5], [6]]
    responses = [[7, 8], [], [9]]
    batches = packing.pack(prompts, responses, max_tokens_per_batch=100)
    assert sorted(r for b in batches for r in b.rows) == [0, 2]
    with torch.no_grad():
        out = packing.score(model, prompts, responses, max_tokens_per_batch=100)
    assert [o.shape[0] for o in out] == [2, 0, 1]
    assert out[1].dtype == torch.float32


# --- layout -------------------------------------------------------------------------------------

def full_rows(prompts, responses):
    return [list(p) + list(r) for p, r in zip(prompts, responses)]


def test_unshared_layout_restarts_positions_and_shifts_targets():
    prompts, responses = hir_rows(seed=7)
    (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000, share_prompts=False)
    rows = full_rows(prompts, responses)
    order = list(batch.rows)
    assert sorted(order) == list(range(len(rows)))
    assert batch.cu_seqlens.dtype == torch.int32
    assert batch.cu_seqlens.tolist() == [0] + list(
        torch.tensor([len(rows[r]) for r in order]).cumsum(0).tolist())
    assert batch.max_seqlen == max(len(r) for r in rows)
    assert batch.attention.kv_index is None
    assert batch.input_ids.tolist() == sum((rows[r] for r in order), [])
    assert batch.position_ids.tolist() == sum((list(range(len(rows[r]))) for r in order), [])
    assert batch.targets.tolist() == sum((rows[r][1:] + [IGNORE_INDEX] for r in order), [])
    assert batch.row_index.tolist() == sum(([r] * len(rows[r]) for r in order), [])
    mask = sum(([False] * (len(prompts[r]) - 1) + [True] * len(responses[r]) + [False]
                for r in order), [])
    assert batch.loss_mask.tolist() == mask
    assert batch.response_positions.tolist() == [i for i, m in enumerate(mask) if m]
    assert batch.response_targets.tolist() == sum((responses[r] for r in order), [])
    assert batch.response_cu_seqlens.dtype == torch.int32
    assert batch.response_cu_seqlens.tolist() == [0] + list(
        torch.tensor([len(responses[r]) for r in order]).cumsum(0).tolist())
    assert batch.num_tokens == batch.num_row_tokens == sum(len(r) for r in rows)


def test_shared_layout_rebuilds_every_row_through_its_keys():
    prompts, responses = hir_rows(seed=8)
    rows = full_rows(prompts, responses)
    (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000, min_shared_prefix=8)
    meta = batch.attention
    assert meta.kv_index is not None
    cu_q, cu_k = batch.cu_seqlens.tolist(), meta.cu_seqlens_k.tolist()
    assert meta.cu_seqlens_k.dtype == torch.int32
    assert list(meta.seqlens_q) == [b - a for a, b in zip(cu_q, cu_q[1:])]
    assert meta.max_seqlen_k == max(meta.seqlens_k)
    seen_rows = []
    for seg in range(batch.num_segments):
        q = slice(cu_q[seg], cu_q[seg + 1])
        keys = meta.kv_index[cu_k[seg]:cu_k[seg + 1]]
        owners = set(batch.row_index[q].tolist())
        assert len(owners) == 1
        owner = owners.pop()
        # Every segment's gathered keys are a whole prefix of its rows, positions 0..n-1, and
        # the segment's own tokens are the last ones of them.
        assert batch.position_ids[keys].tolist() == list(range(len(keys)))
        assert keys[-(q.stop - q.start):].tolist() == list(range(q.start, q.stop))
        if owner == -1:
            assert not batch.loss_mask[q].any()
            continue
        seen_rows.append(owner)
        assert batch.input_ids[keys].tolist() == rows[owner]  # the whole row, rebuilt
        own_start = len(rows[owner]) - (q.stop - q.start)
        assert batch.targets[q].tolist() == rows[owner][own_start + 1:] + [IGNORE_INDEX]
        own_prompt = len(prompts[owner]) - (len(rows[owner]) - (q.stop - q.start))
        assert own_prompt >= 1  # the last prompt token is never shared
        assert batch.loss_mask[q].tolist() == ([False] * (own_prompt - 1)
                                               + [True] * len(responses[owner]) + [False])
    assert sorted(seen_rows) == list(range(len(rows)))
    assert batch.num_tokens < batch.num_row_tokens


def test_min_shared_prefix_is_respected():
    prompts = [[1] * 10 + [2, 3], [1] * 10 + [4, 5], [7, 8, 9]]
    responses = [[1], [2], [3]]
    (shared,) = packing.pack(prompts, responses, max_tokens_per_batch=100, min_shared_prefix=10)
    (unshared,) = packing.pack(prompts, responses, max_tokens_per_batch=100, min_shared_prefix=11)
    assert shared.num_tokens == 10 + 3 + 3 + 4 and shared.num_segments == 4
    assert unshared.num_tokens == 13 + 13 + 4 and unshared.attention.kv_index is None


def test_deeply_nested_prompts_are_packed_without_deep_recursion():
    # Each prompt a prefix of the next: the prefix tree would nest 1,500 deep.
    prompts = [[1] * (i + 2) for i in range(1500)]
    responses = [[2]] * 1500
    batches = packing.pack(prompts, responses, max_tokens_per_batch=10 ** 7, min_shared_prefix=1)
    (batch,) = batches
    assert sorted(batch.rows) == list(range(1500))
    assert batch.num_tokens < batch.num_row_tokens


# --- micro-batches ------------------------------------------------------------------------------

def row_cost(length, weight):
    return length + weight * packing.causal_attention_pairs(length)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.booleans(), budget_factor=st.floats(1.0, 6.0),
       weight=st.sampled_from([0.0, 1e-4, 1e-2]))
def test_micro_batches_respect_budget_and_balance(seed, share, budget_factor, weight):
    rng = random.Random(seed)
    prompts, responses = [], []
    for _ in range(rng.randint(1, 8)):  # groups of 6 originals + 2 replays
        prompt = [rng.randrange(VOCAB) for _ in range(rng.randint(10, 40))]
        for j in range(8):
            prompts.append(prompt if j < 6 else prompt[:rng.randint(1, len(prompt))] + [0])
            responses.append([rng.randrange(VOCAB) for _ in range(rng.randint(1, 150))])
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses)]
    budget = int(max(lengths) * budget_factor)
    batches = packing.pack(prompts, responses, max_tokens_per_batch=budget, share_prompts=share,
                           min_shared_prefix=8, attention_cost_weight=weight)
    packed_rows = sorted(r for b in batches for r in b.rows)
    assert packed_rows == list(range(len(prompts)))  # every row exactly once, whole
    for b in batches:
        assert b.num_tokens <= budget and not b.oversized
        assert b.cost == pytest.approx(b.num_tokens + weight * b.attention_pairs)
    assert sum(b.num_tokens for b in batches) <= sum(lengths)
    # A packing unit is a row or a group (a prompt's 8 rows, the header is never shared across
    # prompts here); its cost is at most that of its rows computed alone.
    groups = [sum(row_cost(n, weight) for n in lengths[g:g + 8]) for g in range(0, len(lengths), 8)]
    largest_unit = max(groups) if share else max(row_cost(n, weight) for n in lengths)
    costs = [b.cost for b in batches]
    assert max(costs) - min(costs) <= largest_unit + 1e-6


@pytest.mark.parametrize("system_prompt", [0, 40], ids=["no-system-prompt", "system-prompt"])
def test_realistic_mix_is_balanced_within_ten_percent(system_prompt):
    # 32 tasks x (6 originals + 2 replays), prompts 100-400, responses 30-1500 tokens. With a
    # 40-token system prompt common to all tasks, every row shares it: one prefix tree for the
    # whole step, which must be split into balanced sub-groups that each carry the prefix.
    rng = random.Random(0)
    prompts, responses = [], []
    for _ in range(32):
        prompt = [5] * system_prompt + [rng.randrange(VOCAB)
                                        for _ in range(rng.randint(100, 400))]
        for j in range(8):
            prompts.append(prompt if j < 6 else prompt[:len(prompt) // 2] + [0] * 20)
            responses.append([0] * min(1500, max(30, int(rng.lognormvariate(5.7, 0.8)))))
    batches = packing.pack(prompts, responses, max_tokens_per_batch=16_384)
    costs = [b.cost for b in batches]
    mean = sum(costs) / len(costs)
    assert len(batches) >= 4
    assert max(costs) <= 1.1 * mean and min(costs) >= 0.9 * mean


def test_attention_cost_is_part_of_the_balance():
    # One 400-token row and sixteen 50-token rows, a budget that forces two micro-batches. By
    # tokens alone the long row gets company (600 / 600 tokens); counting attention (weight 0.01:
    # 1202 vs 62.75 per short row) it is balanced against all the short rows together.
    prompts = [[1] * 200] + [[1] * 25] * 16
    responses = [[2] * 200] + [[2] * 25] * 16
    by_tokens = packing.pack(prompts, responses, max_tokens_per_batch=800, share_prompts=False,
                             attention_cost_weight=0.0)
    by_cost = packing.pack(prompts, responses, max_tokens_per_batch=800, share_prompts=False,
                           attention_cost_weight=0.01)
    assert sorted(b.num_tokens for b in by_tokens) == [600, 600]
    assert sorted(b.num_tokens for b in by_cost) == [400, 800]
    assert next(b for b in by_cost if 0 in b.rows).rows == (0,)


def test_row_longer_than_budget_is_its_own_micro_batch():
    prompts = [[1] * 50, [2] * 10, [3] * 10]
    responses = [[4] * 100, [5] * 10, [6] * 10]
    batches = packing.pack(prompts, responses, max_tokens_per_batch=60)
    (big,) = [b for b in batches if b.oversized]
    assert big.rows == (0,) and big.num_tokens == 150
    assert all(b.num_tokens <= 60 for b in batches if not b.oversized)
    assert sorted(r for b in batches for r in b.rows) == [0, 1, 2]


def test_group_larger_than_budget_is_split_with_its_prefix_copied():
    prompt = list(range(1, 41))
    prompts = [prompt] * 6
    responses = [[7] * 30] * 6
    batches = packing.pack(prompts, responses, max_tokens_per_batch=120, min_shared_prefix=8)
    assert all(b.num_tokens <= 120 for b in batches)
    assert sorted(r for b in batches for r in b.rows) == list(range(6))
    for b in batches:
        assert len(b.rows) >= 2 and b.attention.kv_index is not None  # each keeps a prefix copy


# --- flops --------------------------------------------------------------------------------------

def test_model_flops_count_the_matmuls():
    config = transformers.Qwen2Config(hidden_size=1536, intermediate_size=8960,
                                      num_hidden_layers=28, num_attention_heads=12,
                                      num_key_value_heads=2, vocab_size=151_936)
    flops = packing.ModelFlops.from_config(config)
    layer = 1536 * 1536 + 2 * 1536 * 256 + 1536 * 1536 + 3 * 1536 * 8960
    assert flops.per_token == 2 * 28 * layer
    assert flops.per_attention_pair == 4 * 28 * 1536
    assert flops.per_logit_token == 2 * 1536 * 151_936
    assert flops.attention_cost_weight == pytest.approx(packing.DEFAULT_ATTENTION_COST_WEIGHT,
                                                        rel=1e-2)
    assert packing.causal_attention_pairs(4) == 10
    assert packing.causal_attention_pairs(3, prefix_len=5) == 15 + 6


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("prompts, responses, message", [
    ([[1, 2]], [[1], [2]], "1 prompts but 2 responses"),
    ([[1, 2], []], [[1], [2]], "row 1: prompt is empty"),
    ([[1, -3]], [[1]], r"row 0: prompt\[1\] = -3 is negative"),
    ([[1, 2]], [[1, 2.5]], r"row 0: response\[1\] = 2.5 is not an integer"),
    ([[1, 2]], ["abc"], "row 0: response must be a sequence of token ids"),
    ([[1, True]], [[1]], r"row 0: prompt\[1\] is a bool"),
    ([torch.ones(2, 2, dtype=torch.long)], [[1]], "row 0: prompt must be a 1-D integer tensor"),
    ([torch.ones(2)], [[1]], "row 0: prompt must be a 1-D integer tensor"),
])
def test_bad_rows_are_clear_errors(prompts, responses, message):
    with pytest.raises(ValueError, match=message):
        packing.pack(prompts, responses, max_tokens_per_batch=100)


def test_bad_budget_and_out_of_vocabulary_tokens_are_clear_errors():
    with pytest.raises(ValueError, match="max_tokens_per_batch must be a positive int"):
        packing.pack([[1]], [[1]], max_tokens_per_batch=0)
    with pytest.raises(ValueError, match="min_shared_prefix must be a positive int"):
        packing.pack([[1]], [[1]], max_tokens_per_batch=10, min_shared_prefix=0)
    model = tiny_model("llama")
    with pytest.raises(ValueError, match=rf"row 1: response\[0\] = {VOCAB} is outside"):
        packing.score(model, [[1], [2]], [[3], [VOCAB]], max_tokens_per_batch=10)


def test_tensor_rows_are_accepted():
    model = tiny_model("llama")
    prompts, responses = hir_rows(seed=9, groups=1)
    with torch.no_grad():
        as_lists = packing.score(model, prompts, responses, max_tokens_per_batch=500)
        as_tensors = packing.score(model, [torch.tensor(p) for p in prompts],
                                   [torch.tensor(r, dtype=torch.int32) for r in responses],
                                   max_tokens_per_batch=500)
    for a, b in zip(as_lists, as_tensors):
        assert torch.equal(a, b)


# --- GPU ----------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["flash_attn", "torch_varlen", "xformers"])
def test_gpu_backend_scores_match_reference_in_bf16(backend):
    from hirfast.attention import backend_unavailable_reason

    reason = backend_unavailable_reason(backend, "cuda", torch.bfloat16)
    if reason is not None:
        pytest.skip(reason)
    model = tiny_model("qwen2", hidden_size=128, num_attention_heads=4, num_key_value_heads=2)
    model = model.to("cuda", torch.bfloat16)
    prompts, responses = hir_rows(seed=10, max_response=200)
    fp32_model = tiny_model("qwen2", hidden_size=128, num_attention_heads=4,
                            num_key_value_heads=2).to("cuda")
    with torch.no_grad():
        exact = packing.score(fp32_model, prompts, responses, max_tokens_per_batch=2000,
                              min_shared_prefix=8, backend="sdpa_reference")
        reference = packing.score(model, prompts, responses, max_tokens_per_batch=2000,
                                  min_shared_prefix=8, backend="sdpa_reference")
        got = packing.score(model, prompts, responses, max_tokens_per_batch=2000,
                            min_shared_prefix=8, backend=backend)
    ref_err = max((r - e).abs().max().item() for r, e in zip(reference, exact))
    got_err = max((g - e).abs().max().item() for g, e in zip(got, exact))
    # As flash-attention's own tests: within twice the error of a same-dtype reference.
    assert got_err <= 2 * ref_err + 1e-2, (got_err, ref_err)
