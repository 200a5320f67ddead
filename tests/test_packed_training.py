"""Packed training passes as the trainer runs them on a GPU: gradient checkpointing (whose backward
re-runs each layer's forward, attention included) and bf16 autocast over fp32 weights.

Both reproduce on the CPU with a tiny model: checkpointing recomputes on any device, and CPU
autocast leaves RoPE's q/k in fp32 and v in bf16 exactly as CUDA autocast does. The `gpu` twins
at the end run the same checks on CUDA with the kernels "auto" picks there.
"""
import pytest
import torch

from hirfast import attention, packing
from hirfast.ops import policy_loss

transformers = pytest.importorskip("transformers")

VOCAB = 101


def tiny_qwen2(seed=7, **overrides):
    common = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=512,
                  attn_implementation="sdpa", tie_word_embeddings=True)
    common.update(overrides)
    torch.manual_seed(seed)
    model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common)).float()
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(8.0)
    return model


def hir_like_rows(seed=3):
    """Two groups of rows sharing a prompt (so the shared-prefix gather is exercised), of unequal
    lengths: attention leaking across rows changes every row's hidden states."""
    g = torch.Generator().manual_seed(seed)

    def tokens(n):
        return torch.randint(10, VOCAB, (n,), generator=g).tolist()

    prompts, responses = [], []
    for group in range(2):
        prompt = tokens(20 + 7 * group)
        for i in range(3):
            prompts.append(prompt)
            responses.append(tokens(5 + 4 * i + group))
    return prompts, responses


def packed_loss_and_grads(model, batches, *, autocast=None):
    """The trainer's micro-batch loop: response_hidden + policy_loss, then backward per batch."""
    model.zero_grad(set_to_none=True)
    head = packing.lm_head_weight(model)
    losses = []
    for batch in batches:
        context = (torch.autocast(autocast[0], dtype=autocast[1]) if autocast
                   else torch.autocast("cpu", enabled=False))
        with context:
            hidden = packing.response_hidden(model, batch)
        weight = head
        if autocast:
            hidden, weight = hidden.to(autocast[1]), head.to(autocast[1])
        g = torch.Generator().manual_seed(len(losses))
        advantages = torch.randn(hidden.shape[0], generator=g).to(hidden.device)
        loss, _ = policy_loss(hidden, weight, batch.response_targets, advantages,
                              cu_seqlens=batch.response_cu_seqlens)
        loss.backward()
        losses.append(float(loss.detach()))
    return losses, {name: p.grad.detach().float().cpu().clone()
                    for name, p in model.named_parameters() if p.grad is not None}


def _batches(device="cpu", budget=10_000):
    prompts, responses = hir_like_rows()
    return [b.to(device) for b in packing.pack(prompts, responses, max_tokens_per_batch=budget,
                                                 min_shared_prefix=8)]


# --- item 1: gradient checkpointing recomputes through the packed attention --------------------

@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_checkpointed_packed_backward_equals_plain_backward(reentrant):
    # Before the fix, the recomputation in backward ran the model's own SDPA over the whole packed
    # sequence (the `with packed_attention` block had ended): CheckpointError without reentrancy,
    # silently different gradients (rows attending to each other) with it.
    model = tiny_qwen2().train()
    batches = _batches(budget=70)  # several micro-batches, one backward each
    assert len(batches) > 1 and any(b.attention.kv_index is not None for b in batches)
    plain_losses, plain = packed_loss_and_grads(model, batches)

    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    assert model.is_gradient_checkpointing
    ckpt_losses, ckpt = packed_loss_and_grads(model, batches)

    assert ckpt_losses == pytest.approx(plain_losses, abs=1e-6)
    assert ckpt.keys() == plain.keys() and plain
    for name, want in plain.items():
        assert (ckpt[name] - want).abs().max().item() <= 1e-5, name
    # Outside the training pass the model is its own again: a padded call uses its attention.
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
        out = model(input_ids=ids, attention_mask=torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]]))
    assert torch.isfinite(out.logits).all()


def test_checkpointed_recomputation_runs_the_packed_backend(monkeypatch):
    # The recomputed layers must reach hirfast's attention (the forward's own calls, then one
    # more per layer in backward), never the model's SDPA with a causal mask over all rows.
    from transformers.integrations import sdpa_attention

    calls = {"packed": 0}
    real = attention.varlen_attention

    def counting(*args, **kwargs):
        calls["packed"] += 1
        return real(*args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("the model's SDPA ran inside a packed pass")

    monkeypatch.setattr(attention, "varlen_attention", counting)
    monkeypatch.setattr(sdpa_attention, "sdpa_attention_forward", refuse)
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    monkeypatch.setitem(ALL_ATTENTION_FUNCTIONS._global_mapping, "sdpa", refuse)

    model = tiny_qwen2().train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    (batch,) = _batches()
    packed_loss_and_grads(model, [batch])
    layers = model.config.num_hidden_layers
    assert calls["packed"] == 2 * layers  # forward + recomputation


# --- item 2: bf16 autocast hands the packed kernels one half-precision dtype -------------------

def test_autocast_casts_q_k_v_to_the_autocast_dtype_before_dispatch(monkeypatch):
    # Under autocast over fp32 weights, RoPE's fp32 cos/sin leave q and k in fp32 while v is bf16;
    # "auto" then resolved on fp32 and took the per-segment loop (and torch_varlen refused).
    seen = []
    real_resolve = attention.resolve_backend

    def recording_resolve(backend, device, dtype):
        seen.append(dtype)
        return real_resolve(backend, device, dtype)

    backend_dtypes = []
    real_reference = attention._BACKEND_FNS["sdpa_reference"]

    def recording_reference(q, k, v, meta, scale, window):
        backend_dtypes.append((q.dtype, k.dtype, v.dtype))
        return real_reference(q, k, v, meta, scale, window)

    monkeypatch.setattr(attention, "resolve_backend", recording_resolve)
    monkeypatch.setitem(attention._BACKEND_FNS, "sdpa_reference", recording_reference)
    model = tiny_qwen2().train()
    (batch,) = _batches()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = packing.response_hidden(model, batch)
    assert hidden.dtype == torch.float32  # the final norm runs in fp32 under autocast
    assert seen and set(seen) == {torch.bfloat16}
    assert set(backend_dtypes) == {(torch.bfloat16,) * 3}


def test_autocast_dtype_reaches_a_gpu_backend_in_the_dispatch(monkeypatch):
    # What "auto" does on a GPU under autocast, with the CUDA checks stubbed: it resolves on the
    # query's dtype, so fp32 q/k with a bf16 v took the per-segment loop; cast first, they reach
    # the first half-precision kernel.
    monkeypatch.setattr(attention, "_RESOLVED", {})
    monkeypatch.setattr(attention, "backend_unavailable_reason",
                        lambda b, device, dtype: None if b == "torch_varlen" else "stub")
    assert attention.resolve_backend("auto", "cuda", torch.float32) == "sdpa_reference"
    assert attention.resolve_backend("auto", "cuda", torch.bfloat16) == "torch_varlen"

    resolved = []
    real_resolve = attention.resolve_backend

    def on_a_gpu(backend, device, dtype):  # the rule above, for these CPU tensors
        resolved.append(dtype)
        return real_resolve(backend, "cuda", dtype)

    ran = []
    monkeypatch.setattr(attention, "resolve_backend", on_a_gpu)
    monkeypatch.setitem(attention._BACKEND_FNS, "torch_varlen",
                        lambda q, k, v, meta, scale, window: ran.append(
                            (q.dtype, k.dtype, v.dtype)) or q.new_zeros(q.shape))
    monkeypatch.setitem(attention._BACKEND_FNS, "sdpa_reference",
                        lambda *args: pytest.fail("the per-segment loop ran under autocast"))
    forward = attention._hf_attention_for("auto")
    q = torch.randn(1, 4, 6, 8)
    k = torch.randn(1, 2, 6, 8)
    v = torch.randn(1, 2, 6, 8).bfloat16()
    meta = attention.PackedAttentionMeta.from_cu_seqlens(torch.tensor([0, 2, 6]))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = forward(None, q, k, v, None, hirfast_packing=meta)
    assert resolved == [torch.bfloat16] and ran == [(torch.bfloat16,) * 3]
    assert out.dtype == torch.bfloat16


def test_mixed_dtypes_without_autocast_are_a_clear_error():
    forward = attention._hf_attention_for("sdpa_reference")
    meta = attention.PackedAttentionMeta.from_cu_seqlens(torch.tensor([0, 2, 6]))
    q, k = torch.randn(1, 4, 6, 8), torch.randn(1, 2, 6, 8)
    with pytest.raises(ValueError, match="same dtype"):
        forward(None, q, k, k.bfloat16(), None, hirfast_packing=meta)


# --- GPU twins ---------------------------------------------------------------------------------

@pytest.mark.gpu
def test_gpu_checkpointed_autocast_packed_backward_matches_plain():
    # The trainer's GPU pass: fp32 weights, bf16 autocast, checkpointing, packed with "auto".
    # Checkpointing only recomputes, so gradients agree up to bf16 kernel nondeterminism
    # (atomics in the attention backward, index_add_ of the shared-prefix gather).
    model = tiny_qwen2(hidden_size=128, num_attention_heads=4, num_key_value_heads=2).cuda().train()
    batches = _batches("cuda", budget=70)
    plain_losses, plain = packed_loss_and_grads(model, batches, autocast=("cuda", torch.bfloat16))
    model.gradient_checkpointing_enable()
    ckpt_losses, ckpt = packed_loss_and_grads(model, batches, autocast=("cuda", torch.bfloat16))
    assert ckpt_losses == pytest.approx(plain_losses, rel=1e-2, abs=1e-2)
    for name, want in plain.items():
        scale = want.abs().max().item() + 1e-6
        assert (ckpt[name] - want).abs().max().item() <= 2e-2 * scale, name


@pytest.mark.gpu
def test_gpu_autocast_picks_a_half_precision_kernel(monkeypatch):
    chosen = []
    real_resolve = attention.resolve_backend

    def recording_resolve(backend, device, dtype):
        name = real_resolve(backend, device, dtype)
        chosen.append(name)
        return name

    monkeypatch.setattr(attention, "resolve_backend", recording_resolve)
    model = tiny_qwen2(hidden_size=128, num_attention_heads=4, num_key_value_heads=2).cuda().train()
    (batch,) = _batches("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        packing.response_hidden(model, batch)
    assert chosen and "sdpa_reference" not in chosen, chosen
