"""hirfast.attention: packed varlen attention against rows computed alone, backends, HF wiring.

Queries, keys and values are drawn from tables indexed by (token id, position), so a token has the
same q/k/v whether its row is packed alone or under a shared prefix; the reference is plain float64
causal attention over each whole row.
"""
import logging
import random
import sys
import types

import pytest
import torch

from hirfast import attention, packing

VOCAB = 53
MAX_POS = 256


def rows_with_shared_prompts(seed, groups=3, per_group=4, max_response=40):
    rng = random.Random(seed)
    prompts, responses = [], []
    for _ in range(groups):
        prompt = [rng.randrange(VOCAB) for _ in range(rng.randint(12, 40))]
        for j in range(per_group):
            # Half the rows keep the whole prompt, half keep a prefix and add their own tail.
            own = prompt if j % 2 == 0 else prompt[:rng.randint(9, len(prompt))] + [1, 2, 3]
            prompts.append(own)
            responses.append([rng.randrange(VOCAB) for _ in range(rng.randint(1, max_response))])
    return prompts, responses


def tables(heads, kv_heads, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {name: (torch.randn(VOCAB, n, dim, generator=g, dtype=torch.float64),
                   torch.randn(MAX_POS, n, dim, generator=g, dtype=torch.float64))
            for name, n in (("q", heads), ("k", kv_heads), ("v", kv_heads))}


def lookup(table, tokens, positions, dtype):
    by_token, by_position = table
    return (by_token[tokens] + by_position[positions]).to(dtype)


def dense_row_attention(q, k, v, scale, window=None):
    """float64 causal attention over one whole row; q [L, H, D], k, v [L, Hkv, D]."""
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1).double()
    v = v.repeat_interleave(groups, dim=1).double()
    scores = torch.einsum("qhd,khd->hqk", q.double(), k) * scale
    length = q.shape[0]
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    allowed = j <= i
    if window is not None:
        allowed &= j > i - window
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)


def check_against_rows(backend_fn, dtype, tol, *, heads=6, kv_heads=2, dim=16, window=None,
                       seed=0, device="cpu"):
    """Run `backend_fn(q, k, v, meta, scale, window)` on a shared-prefix packed batch; compare
    every row's outputs (its prefix tokens included) and the gradients of the q/k/v tables with
    float64 attention over each row alone. Returns the max errors (out, grad)."""
    prompts, responses = rows_with_shared_prompts(seed)
    (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000, min_shared_prefix=8)
    assert batch.attention.kv_index is not None
    scale = dim ** -0.5
    tabs = tables(heads, kv_heads, dim, seed)
    leaves = [t for pair in tabs.values() for t in pair]
    for t in leaves:
        t.requires_grad_(True)
    weights = torch.Generator().manual_seed(seed + 1)
    row_weights = [torch.rand(len(p) + len(r), heads, dim, generator=weights, dtype=torch.float64)
                   for p, r in zip(prompts, responses)]

    # Packed.
    ids, pos = batch.input_ids, batch.position_ids
    q, k, v = (lookup(tabs[n], ids, pos, dtype).to(device) for n in "qkv")
    meta = batch.attention.to(device)
    out = backend_fn(q, k, v, meta, scale, window)
    cu_q, cu_k = batch.cu_seqlens.tolist(), batch.attention.cu_seqlens_k.tolist()
    packed_rows, loss = {}, 0.0
    for seg in range(batch.num_segments):
        owner = batch.row_index[cu_q[seg]].item()
        if owner == -1:
            continue
        keys = batch.attention.kv_index[cu_k[seg]:cu_k[seg + 1]].to(device)
        packed_rows[owner] = out.index_select(0, keys).double().cpu()  # the whole row's outputs
        loss = loss + (packed_rows[owner] * row_weights[owner]).sum()
    packed_grads = torch.autograd.grad(loss, leaves)

    # Each row alone.
    reference_rows, loss = {}, 0.0
    for row, (p, r) in enumerate(zip(prompts, responses)):
        tokens = torch.tensor(p + r)
        positions = torch.arange(len(tokens))
        qr, kr, vr = (lookup(tabs[n], tokens, positions, torch.float64) for n in "qkv")
        reference_rows[row] = dense_row_attention(qr, kr, vr, scale, window)
        loss = loss + (reference_rows[row] * row_weights[row]).sum()
    reference_grads = torch.autograd.grad(loss, leaves)

    assert sorted(packed_rows) == list(range(len(prompts)))
    out_err = max((packed_rows[r] - reference_rows[r]).abs().max().item() for r in packed_rows)
    grad_err = max(((a - b).abs().max() / b.abs().max().clamp(min=1)).item()
                   for a, b in zip(packed_grads, reference_grads))
    assert out_err <= tol and grad_err <= tol, (out_err, grad_err)
    return out_err, grad_err


def through(backend):
    def run(q, k, v, meta, scale, window):
        return attention.varlen_attention(q, k, v, meta, scale=scale, sliding_window=window,
                                          backend=backend)
    return run


reference_backend = through("sdpa_reference")


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)],
                         ids=["fp32", "bf16"])
@pytest.mark.parametrize("heads, kv_heads, dim", [(6, 2, 16), (4, 4, 32), (3, 1, 24)])
def test_reference_backend_equals_rows_alone(dtype, tol, heads, kv_heads, dim):
    check_against_rows(reference_backend, dtype, tol, heads=heads, kv_heads=kv_heads, dim=dim)


def test_reference_backend_sliding_window_equals_rows_alone():
    check_against_rows(reference_backend, torch.float32, 1e-5, window=7)


def test_varlen_attention_rejects_inconsistent_inputs():
    prompts, responses = rows_with_shared_prompts(0, groups=1)
    (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000, min_shared_prefix=8)
    t = batch.num_tokens
    q, k = torch.randn(t, 4, 8), torch.randn(t, 2, 8)
    with pytest.raises(ValueError, match="query holds"):
        attention.varlen_attention(q[:-1], k[:-1], k[:-1], batch.attention)
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        attention.varlen_attention(torch.randn(t, 3, 8), k, k, batch.attention)
    with pytest.raises(ValueError, match=r"\[tokens, heads, head_dim\]"):
        attention.varlen_attention(q[None], k, k, batch.attention)


# --- backend choice -----------------------------------------------------------------------------

def test_auto_picks_the_reference_on_cpu_and_logs_once(caplog):
    attention._RESOLVED.clear()
    with caplog.at_level(logging.INFO, logger="hirfast.attention"):
        assert attention.resolve_backend("auto", "cpu", torch.float32) == "sdpa_reference"
        assert attention.resolve_backend("auto", "cpu", torch.float32) == "sdpa_reference"
    assert [r.getMessage() for r in caplog.records].count(
        "hirfast packed attention: using the sdpa_reference backend for cpu torch.float32 "
        "tensors") == 1


@pytest.mark.parametrize("backend", ["flash_attn", "torch_varlen", "xformers"])
def test_gpu_backend_named_on_cpu_is_a_clear_error(backend):
    with pytest.raises(ValueError, match=f"{backend}.*needs a CUDA device"):
        attention.resolve_backend(backend, "cpu", torch.bfloat16)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown attention backend 'flash3'"):
        attention.resolve_backend("flash3", "cpu", torch.float32)
    with pytest.raises(ValueError, match="unknown attention backend 'flash3'"):
        attention.register("flash3")


# --- backend adapters, run on the CPU against stand-ins of the documented library APIs ----------
# No GPU here: these check that each adapter passes what the library documents (int32 cu_seqlens,
# causal aligned bottom-right, windows, scale, grouped-query layout). The real kernels are compared
# with the reference by the `gpu` tests below.

def documented_varlen(q, k, v, cu_q, cu_k, scale, causal, window_left):
    """Varlen attention as flash-attn documents it: causal aligned to the bottom right, a window
    of `window_left` keys before the diagonal (-1: none); GQA with H a multiple of Hkv."""
    assert cu_q.dtype == torch.int32 and cu_k.dtype == torch.int32
    groups = q.shape[1] // k.shape[1]
    outs = []
    for i in range(cu_q.numel() - 1):
        qs = q[cu_q[i]:cu_q[i + 1]]
        ks = k[cu_k[i]:cu_k[i + 1]].repeat_interleave(groups, dim=1)
        vs = v[cu_k[i]:cu_k[i + 1]].repeat_interleave(groups, dim=1)
        scores = torch.einsum("qhd,khd->hqk", qs, ks) * scale
        offset = ks.shape[0] - qs.shape[0]
        qi = torch.arange(qs.shape[0])[:, None] + offset
        kj = torch.arange(ks.shape[0])[None, :]
        allowed = kj <= qi if causal else torch.ones_like(kj <= qi)
        if window_left >= 0:
            allowed &= kj >= qi - window_left
        scores = scores.masked_fill(~allowed, float("-inf"))
        outs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), vs))
    return torch.cat(outs)


@pytest.fixture
def fake_module(monkeypatch):
    """Installs a stand-in module and lets its backend run on CPU fp32 tensors, through
    varlen_attention (which gathers the shared-prefix keys before calling the backend)."""
    monkeypatch.setattr(attention, "backend_unavailable_reason", lambda *args: None)
    monkeypatch.setattr(attention, "_RESOLVED", {})
    monkeypatch.setattr(attention, "_GROUPED_KV", {})
    monkeypatch.delenv(attention.GQA_ENV, raising=False)

    def install(name, module):
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent not in sys.modules:
                monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
        monkeypatch.setitem(sys.modules, name, module)
        if len(parts) > 1:
            monkeypatch.setattr(sys.modules[".".join(parts[:-1])], parts[-1], module, raising=False)
    return install


@pytest.mark.parametrize("window", [None, 7])
def test_flash_attn_adapter(fake_module, window):
    calls = []

    def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                               dropout_p=0.0, softmax_scale=None, causal=False,
                               window_size=(-1, -1)):
        calls.append((max_seqlen_q, max_seqlen_k, causal, window_size, dropout_p))
        return documented_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, softmax_scale, causal,
                                 window_size[0])

    fake_module("flash_attn", types.SimpleNamespace(flash_attn_varlen_func=flash_attn_varlen_func))
    check_against_rows(through("flash_attn"), torch.float32, 1e-5, window=window)
    assert calls and all(c[2] is True and c[4] == 0.0 for c in calls)
    assert calls[0][3] == ((-1, -1) if window is None else (6, 0))


def test_torch_varlen_adapter_with_the_torch_2_10_signature(fake_module):
    def varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, is_causal=False,
                    return_aux=None):
        assert query.shape[1] == key.shape[1], "2.10 has no grouped-query attention"
        return documented_varlen(query, key, value, cu_seq_q, cu_seq_k, query.shape[-1] ** -0.5,
                                 is_causal, -1)

    fake_module("torch.nn.attention.varlen", types.SimpleNamespace(varlen_attn=varlen_attn))
    attention._varlen_attn_params.cache_clear()
    try:
        check_against_rows(through("torch_varlen"), torch.float32, 1e-5)

        # A scale other than 1/sqrt(D) is folded into the queries for this signature.
        torch.manual_seed(0)
        prompts, responses = rows_with_shared_prompts(3)
        (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000,
                                min_shared_prefix=8)
        q, k, v = (torch.randn(batch.num_tokens, h, 8) for h in (4, 2, 2))
        assert torch.allclose(through("torch_varlen")(q, k, v, batch.attention, 0.2, None),
                              reference_backend(q, k, v, batch.attention, 0.2, None), atol=1e-5)
        with pytest.raises(NotImplementedError, match="no sliding window"):
            through("torch_varlen")(q, k, v, batch.attention, 0.3, 5)
    finally:
        attention._varlen_attn_params.cache_clear()


@pytest.mark.parametrize("window", [None, 7])
def test_torch_varlen_adapter_with_the_window_size_signature(fake_module, window):
    calls = []

    def varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None,
                    scale=None, window_size=(-1, -1), enable_gqa=False):
        calls.append((window_size, enable_gqa))
        assert enable_gqa or query.shape[1] == key.shape[1]
        return documented_varlen(query, key, value, cu_seq_q, cu_seq_k, scale,
                                 window_size[1] == 0, window_size[0])

    fake_module("torch.nn.attention.varlen", types.SimpleNamespace(varlen_attn=varlen_attn))
    attention._varlen_attn_params.cache_clear()
    try:
        check_against_rows(through("torch_varlen"), torch.float32, 1e-5, window=window)
    finally:
        attention._varlen_attn_params.cache_clear()
    assert calls[0] == ((-1, 0) if window is None else (6, 0), True)


def torch_2_11_varlen(calls, grouped_layout="documented"):
    """torch 2.11's varlen_attn signature (scale, window_size; no enable_gqa). It takes fewer K/V
    heads than query heads (FlashAttention 2 underneath); with grouped_layout="wrong" it pairs
    query head h with K/V head h % Hkv instead of h // groups, a kernel that does not do GQA
    the documented way, which the probe must catch."""
    def varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None,
                    scale=None, window_size=(-1, -1)):
        calls.append((query.shape[0], query.shape[1], key.shape[1]))
        groups = query.shape[1] // key.shape[1]
        if grouped_layout == "wrong" and groups > 1:
            key, value = key.repeat(1, groups, 1), value.repeat(1, groups, 1)
        return documented_varlen(query, key, value, cu_seq_q, cu_seq_k,
                                 scale if scale is not None else query.shape[-1] ** -0.5,
                                 window_size[1] == 0, window_size[0])
    return varlen_attn


def test_torch_varlen_passes_unrepeated_grouped_kv_where_torch_takes_them(fake_module):
    """Audit item M1: torch 2.11 has no enable_gqa, and K/V were repeated per query head (a copy
    of every layer's K/V, saved for backward). Its kernel takes grouped K/V, which a probe checks
    once; then K/V go in with their own head count."""
    calls = []
    fake_module("torch.nn.attention.varlen",
                types.SimpleNamespace(varlen_attn=torch_2_11_varlen(calls)))
    attention._varlen_attn_params.cache_clear()
    try:
        assert attention.varlen_takes_grouped_kv("cpu", torch.float32, 16)
        probe_calls = len(calls)
        assert probe_calls == 2  # grouped and repeated, once
        check_against_rows(through("torch_varlen"), torch.float32, 1e-5, heads=6, kv_heads=2)
        assert calls[probe_calls:] and all(kv == 2 for _, q_heads, kv in calls[probe_calls:])
        assert attention.varlen_takes_grouped_kv("cpu", torch.float32, 16)
        assert len(calls) > probe_calls  # cached: no second probe
    finally:
        attention._varlen_attn_params.cache_clear()


def test_grouped_kv_probe_inside_a_checkpointed_forward(fake_module):
    """The trainer's first packed attention call runs inside a checkpointed layer: the probe's
    own autograd must stay out of the checkpoint's saved tensors (else the recomputation, which
    finds the answer cached, saves fewer and backward raises CheckpointError)."""
    calls = []
    fake_module("torch.nn.attention.varlen",
                types.SimpleNamespace(varlen_attn=torch_2_11_varlen(calls)))
    attention._varlen_attn_params.cache_clear()
    try:
        prompts, responses = rows_with_shared_prompts(3)
        (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000,
                                min_shared_prefix=8)
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(batch.num_tokens, h, 16, generator=g).requires_grad_()
                   for h in (6, 2, 2))

        def layer(q, k, v):
            return through("torch_varlen")(q, k, v, batch.attention, 0.25, None).square().sum()

        torch.utils.checkpoint.checkpoint(layer, q, k, v, use_reentrant=False).backward()
        checkpointed = [t.grad.clone() for t in (q, k, v)]
        assert attention._GROUPED_KV == {(torch.device("cpu"), torch.float32, 16): True}
        for t in (q, k, v):
            t.grad = None
        layer(q, k, v).backward()
        for got, want in zip(checkpointed, (q.grad, k.grad, v.grad)):
            assert torch.allclose(got, want, atol=1e-6)
    finally:
        attention._varlen_attn_params.cache_clear()


@pytest.mark.parametrize("how", ["wrong_layout", "rejects", "env"])
def test_torch_varlen_repeats_kv_where_grouped_kv_fails(fake_module, monkeypatch, how):
    calls = []
    varlen = torch_2_11_varlen(calls, "wrong" if how == "wrong_layout" else "documented")
    if how == "rejects":
        def varlen(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None,
                   scale=None, window_size=(-1, -1), _inner=varlen):
            if query.shape[1] != key.shape[1]:
                raise RuntimeError("Number of heads in key/value must equal number of heads")
            return _inner(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=scale,
                          window_size=window_size)
    if how == "env":
        monkeypatch.setenv(attention.GQA_ENV, "repeat")
    fake_module("torch.nn.attention.varlen", types.SimpleNamespace(varlen_attn=varlen))
    attention._varlen_attn_params.cache_clear()
    try:
        assert not attention.varlen_takes_grouped_kv("cpu", torch.float32, 16)
        del calls[:]
        check_against_rows(through("torch_varlen"), torch.float32, 1e-5, heads=6, kv_heads=2)
        assert calls and all(kv == q_heads == 6 for _, q_heads, kv in calls)
    finally:
        attention._varlen_attn_params.cache_clear()


def test_xformers_adapter(fake_module):
    class BlockDiagonalCausalFromBottomRightMask:
        def __init__(self, q_seqlen, kv_seqlen):
            self.q_seqlen, self.kv_seqlen = q_seqlen, kv_seqlen

        @classmethod
        def from_seqlens(cls, q_seqlen, kv_seqlen):
            assert all(isinstance(n, int) for n in q_seqlen + kv_seqlen)
            return cls(q_seqlen, kv_seqlen)

    def memory_efficient_attention(query, key, value, attn_bias=None, scale=None):
        # [B, M, G, H, K] with keys broadcast over H, as xformers documents for GQA.
        assert query.dim() == 5 and query.shape[0] == 1 and key.stride(3) == 0
        b, m, g, h, d = query.shape
        cu_q = torch.tensor([0] + attn_bias.q_seqlen).cumsum(0).to(torch.int32)
        cu_k = torch.tensor([0] + attn_bias.kv_seqlen).cumsum(0).to(torch.int32)
        out = documented_varlen(query[0].reshape(m, g * h, d), key[0, :, :, 0], value[0, :, :, 0],
                                cu_q, cu_k, scale, True, -1)
        return out.reshape(1, m, g, h, d)

    fmha = types.SimpleNamespace(
        memory_efficient_attention=memory_efficient_attention,
        attn_bias=types.SimpleNamespace(
            BlockDiagonalCausalFromBottomRightMask=BlockDiagonalCausalFromBottomRightMask))
    fake_module("xformers.ops", types.SimpleNamespace(fmha=fmha))
    check_against_rows(through("xformers"), torch.float32, 1e-5)


# --- transformers wiring ------------------------------------------------------------------------

def tiny_llama():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, attn_implementation="sdpa")
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def test_register_adds_the_attention_and_a_mask_builder_that_builds_nothing():
    from transformers import AttentionInterface

    name = attention.register("sdpa_reference")
    assert name == "hirfast_sdpa_reference" and name in AttentionInterface()
    assert attention.register() == "hirfast"
    try:
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:
        return
    assert AttentionMaskInterface()[name](batch_size=1, q_length=5, kv_length=5) is None


def test_packed_attention_switches_the_model_and_restores_it():
    model = tiny_llama()
    with pytest.raises(RuntimeError, match="boom"):
        with attention.packed_attention(model, "sdpa_reference") as name:
            assert name == "hirfast_sdpa_reference" == model.config._attn_implementation
            assert model.model.layers[0].self_attn.config._attn_implementation == name
            raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


def test_model_reads_transformers_varlen_kwargs_as_well_as_hirfast_metadata():
    model = tiny_llama()
    prompts, responses = rows_with_shared_prompts(1, groups=2)
    (batch,) = packing.pack(prompts, responses, max_tokens_per_batch=10_000, share_prompts=False)
    inputs = batch.model_inputs()
    with torch.no_grad(), attention.packed_attention(model):
        with_meta = model.model(**inputs).last_hidden_state
        del inputs["hirfast_packing"]
        with_hf_kwargs = model.model(**inputs).last_hidden_state
        with pytest.raises(ValueError, match="needs the packing metadata"):
            model.model(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"])
        with pytest.raises(ValueError, match="batch size 1"):
            model.model(input_ids=inputs["input_ids"].expand(2, -1), use_cache=False,
                        hirfast_packing=batch.attention)
    assert torch.equal(with_meta, with_hf_kwargs)
    # Row by row, the same as transformers' own SDPA on each row alone.
    offset = 0
    with torch.no_grad():
        for row in batch.rows:
            ids = torch.tensor([prompts[row] + responses[row]])
            alone = model.model(input_ids=ids).last_hidden_state[0]
            assert (with_meta[0, offset:offset + ids.shape[1]] - alone).abs().max() <= 1e-5
            offset += ids.shape[1]


# --- GPU ----------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["flash_attn", "torch_varlen", "xformers"])
@pytest.mark.parametrize("heads, kv_heads, dim", [(12, 2, 128), (8, 8, 64)])
def test_gpu_backend_matches_reference_in_bf16(backend, heads, kv_heads, dim):
    reason = attention.backend_unavailable_reason(backend, "cuda", torch.bfloat16)
    if reason is not None:
        pytest.skip(reason)

    # The reference in bf16 on the GPU bounds what bf16 costs; a backend may err at most twice as
    # much (plus a little), against float64 rows, in outputs and in every gradient.
    ref_err = check_against_rows(through("sdpa_reference"), torch.bfloat16, 1.0, heads=heads,
                                 kv_heads=kv_heads, dim=dim, device="cuda")
    got_err = check_against_rows(through(backend), torch.bfloat16, 1.0, heads=heads,
                                 kv_heads=kv_heads, dim=dim, device="cuda")
    assert got_err[0] <= 2 * ref_err[0] + 1e-3, (got_err, ref_err)
    assert got_err[1] <= 2 * ref_err[1] + 1e-3, (got_err, ref_err)


@pytest.mark.gpu
def test_gpu_torch_varlen_grouped_kv_as_good_as_repeated(monkeypatch):
    """torch 2.11's varlen_attn (no enable_gqa) was read to take grouped K/V as they are; the
    probe must find that on the GPU, and the un-repeated call must be as accurate as repeating."""
    reason = attention.backend_unavailable_reason("torch_varlen", "cuda", torch.bfloat16)
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.setattr(attention, "_GROUPED_KV", {})
    grouped = attention.varlen_takes_grouped_kv("cuda", torch.bfloat16, 128)
    params = attention._varlen_attn_params()
    if "window_size" in params and "enable_gqa" not in params:  # the 2.11 signature
        assert grouped
    shape = dict(heads=12, kv_heads=2, dim=128, device="cuda")
    err = check_against_rows(through("torch_varlen"), torch.bfloat16, 1.0, **shape)
    monkeypatch.setenv(attention.GQA_ENV, "repeat")
    repeated = check_against_rows(through("torch_varlen"), torch.bfloat16, 1.0, **shape)
    assert err[0] <= 2 * repeated[0] + 1e-3 and err[1] <= 2 * repeated[1] + 1e-3, (err, repeated)


@pytest.mark.gpu
def test_gpu_auto_backend_is_a_gpu_kernel():
    assert attention.resolve_backend("auto", "cuda", torch.bfloat16) != "sdpa_reference"
