"""Varlen causal attention over packed, padding-free batches, plugged into Hugging Face models.

A packed batch lays many rows end to end in one sequence of ``T`` tokens. Attention must then stay
inside each *segment*: segment ``i`` owns the query tokens ``cu_seqlens_q[i]:cu_seqlens_q[i+1]``.
When prompts are shared (see ``hirfast.packing``), a row is split into a shared prefix segment,
computed once, and its own suffix segment; the suffix must also attend to every token of its
prefix. We do that without touching the model: ``kv_index`` gathers, for every segment, the keys
and values of its ancestors followed by its own, so segment ``i`` attends to the gathered keys
``cu_seqlens_k[i]:cu_seqlens_k[i+1]`` with the causal mask aligned to the bottom right (query ``j``
of a segment of ``Lq`` queries and ``Lk`` keys sees keys ``0 .. j + Lk - Lq``). The gather is an
``index_select``, whose backward sums the gradient of every use of a prefix key, so a prefix gets
the gradient of each row that reads it, exactly once per use.

This is the same attention each row would compute alone, not an approximation: the suffix's keys
are the same vectors (RoPE is applied per token from its own position id before attention), and the
softmax runs over the same set of keys. It is the "equivalent" of merging a prefix pass and a
suffix pass by their log-sum-exp, done in one kernel call (FlashAttention's backward does not take
a gradient of the log-sum-exp, so a merge would have lost part of the prefix's gradient).

Backends (``BACKENDS``), all computing ``out[T, H, D]`` from ``q[T, H, D]``, ``k, v[Tk, Hkv, D]``:

- ``flash_attn``: ``flash_attn.flash_attn_varlen_func`` (the optional ``[flash]`` extra), CUDA,
  fp16/bf16.
- ``torch_varlen``: ``torch.nn.attention.varlen.varlen_attn`` (FlashAttention 2 inside PyTorch,
  2.10+), CUDA with compute capability 8.0+, fp16/bf16. Its signature changed between releases
  (``is_causal`` in 2.10, ``window_size``/``scale``/``enable_gqa`` later); we read it at run time.
- ``xformers``: ``xformers.ops.memory_efficient_attention`` with a block-diagonal causal mask
  aligned bottom-right (the optional ``[xformers]`` extra), CUDA.
- ``sdpa_reference``: ``torch.nn.functional.scaled_dot_product_attention`` once per segment, any
  device and dtype; the test reference and the CPU path.

``backend="auto"`` picks the first usable of ``flash_attn``, ``torch_varlen``, ``xformers`` for
fp16/bf16 tensors on a CUDA device, and ``sdpa_reference`` otherwise; the choice is logged once per
device and dtype.

With Hugging Face models: ``register(backend)`` adds ``hirfast_<backend>`` (``hirfast`` for auto)
to transformers' ``AttentionInterface``; ``packed_attention(model, backend)`` switches a model to it
for the duration of a ``with`` block. The model is then called with ``hirfast_packing=<meta>`` (or
with transformers' own ``cu_seq_lens_q/k`` and ``max_length_q/k`` when nothing is shared) and
restarting ``position_ids``; ``PackedBatch.model_inputs()`` in ``hirfast.packing`` builds them.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import logging
import math
import os
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

BACKENDS = ("flash_attn", "torch_varlen", "xformers", "sdpa_reference")
# Order in which "auto" tries the GPU backends: flash-attn only when the user installed the extra,
# then PyTorch's own FlashAttention (always present in torch 2.10+), then xformers.
_AUTO_ORDER = ("flash_attn", "torch_varlen", "xformers")
_HALF_DTYPES = (torch.float16, torch.bfloat16)
ATTENTION_PREFIX = "hirfast"


@dataclass(frozen=True)
class PackedAttentionMeta:
    """Where each segment's queries and keys lie in a packed batch.

    cu_seqlens_q: int32 [S+1] on the tensors' device, segment ``i`` owns queries
        ``cu_seqlens_q[i]:cu_seqlens_q[i+1]`` of the packed ``T`` tokens.
    cu_seqlens_k: int32 [S+1], segment ``i`` attends to keys ``cu_seqlens_k[i]:cu_seqlens_k[i+1]``
        of the gathered keys (``key[kv_index]``), or of the packed keys when ``kv_index`` is None.
    max_seqlen_q, max_seqlen_k: the longest segment, in queries and in keys.
    seqlens_q, seqlens_k: the same lengths on the host (tuples), so backends that loop or build
        masks on the host never synchronize with the device.
    kv_index: int64 [Tk] or None; ``key.index_select(0, kv_index)`` lays out every segment's
        ancestors' keys followed by its own. None when no segment has a shared prefix, in which
        case ``cu_seqlens_k`` equals ``cu_seqlens_q``.
    """

    cu_seqlens_q: torch.Tensor
    cu_seqlens_k: torch.Tensor
    max_seqlen_q: int
    max_seqlen_k: int
    seqlens_q: tuple
    seqlens_k: tuple
    kv_index: torch.Tensor | None = None

    @staticmethod
    def from_cu_seqlens(cu_seqlens_q, cu_seqlens_k=None, max_seqlen_q=None, max_seqlen_k=None):
        """Metadata for plain packing (no shared prefixes) from transformers-style kwargs."""
        cu_q = cu_seqlens_q.to(torch.int32)
        cu_k = cu_q if cu_seqlens_k is None else cu_seqlens_k.to(torch.int32)
        seqlens_q = tuple(torch.diff(cu_q).tolist())
        seqlens_k = tuple(torch.diff(cu_k).tolist())
        if seqlens_q != seqlens_k:
            raise ValueError(
                "cu_seq_lens_q and cu_seq_lens_k differ, which plain packing does not allow; "
                "pass hirfast_packing=PackedAttentionMeta(...) with a kv_index for shared prefixes")
        max_q = max(seqlens_q, default=0) if max_seqlen_q is None else int(max_seqlen_q)
        max_k = max(seqlens_k, default=0) if max_seqlen_k is None else int(max_seqlen_k)
        return PackedAttentionMeta(cu_q, cu_k, max_q, max_k, seqlens_q, seqlens_k, None)

    def to(self, device) -> "PackedAttentionMeta":
        return PackedAttentionMeta(
            self.cu_seqlens_q.to(device, non_blocking=True),
            self.cu_seqlens_k.to(device, non_blocking=True), self.max_seqlen_q, self.max_seqlen_k,
            self.seqlens_q, self.seqlens_k,
            None if self.kv_index is None else self.kv_index.to(device, non_blocking=True))


# --- backends: (q [T,H,D], k [Tk,Hkv,D], v [Tk,Hkv,D], meta, scale, window) -> out [T,H,D] ---
# `window` is None or the number of keys a query sees (itself included), as transformers'
# `sliding_window`.

def _flash_attn(q, k, v, meta, scale, window):
    from flash_attn import flash_attn_varlen_func

    return flash_attn_varlen_func(
        q, k, v, meta.cu_seqlens_q, meta.cu_seqlens_k, meta.max_seqlen_q, meta.max_seqlen_k,
        dropout_p=0.0, softmax_scale=scale, causal=True,
        window_size=(-1, -1) if window is None else (window - 1, 0))


@functools.lru_cache(maxsize=1)
def _varlen_attn_params() -> frozenset:
    from torch.nn.attention.varlen import varlen_attn

    return frozenset(inspect.signature(varlen_attn).parameters)


def _torch_varlen(q, k, v, meta, scale, window):
    from torch.nn.attention.varlen import varlen_attn

    params = _varlen_attn_params()
    kwargs = {}
    if "window_size" in params:
        kwargs["window_size"] = (-1, 0) if window is None else (window - 1, 0)
    else:
        if window is not None:
            raise NotImplementedError(
                f"torch {torch.__version__}'s varlen_attn has no sliding window; rows longer "
                f"than the model's sliding_window={window} need the flash_attn or sdpa_reference "
                "backend")
        kwargs["is_causal"] = True
    if "scale" in params:
        kwargs["scale"] = scale
    elif not math.isclose(scale, q.shape[-1] ** -0.5, rel_tol=1e-6):
        # Older signatures always use 1/sqrt(D): fold the model's scale into the queries.
        q = q * (scale * q.shape[-1] ** 0.5)
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        if "enable_gqa" in params:
            kwargs["enable_gqa"] = True
        elif not varlen_takes_grouped_kv(q.device, q.dtype, q.shape[-1]):
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
    return varlen_attn(q, k, v, meta.cu_seqlens_q, meta.cu_seqlens_k, meta.max_seqlen_q,
                       meta.max_seqlen_k, **kwargs)


# (device, dtype, head_dim) -> whether varlen_attn (without an enable_gqa flag) computed grouped
# K/V right; probed once, as every layer asks.
_GROUPED_KV: dict = {}
# "repeat" forces the old behaviour (K/V repeated per query head) without probing.
GQA_ENV = "HIRFAST_VARLEN_GQA"


def varlen_takes_grouped_kv(device, dtype, head_dim: int) -> bool:
    """Whether torch's ``varlen_attn`` takes fewer K/V heads than query heads, for a signature
    without ``enable_gqa`` (torch 2.10 and 2.11).

    torch 2.11's ``varlen_attn`` does not check head counts; it hands q, k, v to
    ``aten._flash_attention_forward`` (FlashAttention 2's ``mha_varlen_fwd``, which checks only
    that the K/V heads divide the query heads) and its backward to ``mha_varlen_bwd``, which sums
    the K/V gradients over each group. That is read from the source, not documented (the 2.11
    docstring draws K/V with H heads; 2.12 added ``enable_gqa``), so it is checked once per
    device, dtype and head size: a tiny grouped call, forward and backward, against the same call
    with K/V repeated. Any error or difference means K/V are repeated, as before.
    """
    if os.environ.get(GQA_ENV, "").strip().lower() == "repeat":
        return False
    key = (torch.device(device), dtype, int(head_dim))
    known = _GROUPED_KV.get(key)
    if known is None:
        # In a thread of its own: autograd's saved-tensor hooks, grad mode, inference mode and
        # autocast are per thread, so the probe neither runs under the caller's (a checkpointed
        # layer's first forward would count the probe's saved tensors, which its recomputation,
        # the probe being cached by then, does not save: CheckpointError) nor touches them.
        answer = []
        thread = threading.Thread(target=lambda: answer.append(_probe_grouped_kv(*key)),
                                  name="hirfast-varlen-gqa-probe")
        thread.start()
        thread.join()
        known, why = answer[0] if answer else (False, "the probe did not finish")
        _GROUPED_KV[key] = known
        log.info("hirfast packed attention: torch %s varlen_attn on %s %s %s grouped-query K/V "
                 "un-repeated%s", torch.__version__, key[0], dtype,
                 "takes" if known else "does not take", "" if known else f" ({why}); repeating them")
    return known


def _probe_grouped_kv(device, dtype, head_dim):
    from torch.nn.attention.varlen import varlen_attn

    params = _varlen_attn_params()
    kwargs = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    g = torch.Generator().manual_seed(0)
    lengths, heads, kv_heads = (5, 11), 4, 2
    total = sum(lengths)
    cu = torch.tensor([0, lengths[0], total], dtype=torch.int32).to(device)

    def leaf(n):
        return torch.randn(total, n, head_dim, generator=g).to(device, dtype).requires_grad_()

    try:
        with contextlib.ExitStack() as stack:
            if device.type == "cuda":
                stack.enter_context(torch.cuda.device(device))
            q, k, v = leaf(heads), leaf(kv_heads), leaf(kv_heads)
            grad_out = torch.randn(total, heads, head_dim, generator=g).to(device, dtype)
            results = []
            for repeat in (False, True):
                kk = k.repeat_interleave(2, dim=1) if repeat else k
                vv = v.repeat_interleave(2, dim=1) if repeat else v
                out = varlen_attn(q, kk, vv, cu, cu, max(lengths), max(lengths), **kwargs)
                grads = torch.autograd.grad(out, (q, k, v), grad_out)
                results.append([t.detach().float() for t in (out, *grads)])
    except Exception as exc:  # noqa: BLE001 - any failure means: repeat, as before
        return False, f"{type(exc).__name__}: {str(exc)[:160]}"
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    for name, a, b in zip(("output", "dq", "dk", "dv"), *results):
        if a.shape != b.shape or not torch.allclose(a, b, atol=tolerance, rtol=tolerance):
            return False, f"its {name} differs from the repeated K/V's"
    return True, ""


def _xformers(q, k, v, meta, scale, window):
    from xformers.ops import fmha

    if window is not None:
        raise NotImplementedError(
            f"the xformers backend has no sliding window; rows longer than the model's "
            f"sliding_window={window} need the flash_attn or sdpa_reference backend")
    bias = fmha.attn_bias.BlockDiagonalCausalFromBottomRightMask.from_seqlens(
        list(meta.seqlens_q), list(meta.seqlens_k))
    heads, kv_heads, dim = q.shape[1], k.shape[1], q.shape[2]
    groups = heads // kv_heads
    # xformers takes grouped-query attention as [B, M, G, H, K] with keys broadcast over H.
    q5 = q.reshape(1, q.shape[0], kv_heads, groups, dim)
    k5 = k.reshape(1, k.shape[0], kv_heads, 1, dim).expand(-1, -1, -1, groups, -1)
    v5 = v.reshape(1, v.shape[0], kv_heads, 1, dim).expand(-1, -1, -1, groups, -1)
    out = fmha.memory_efficient_attention(q5, k5, v5, attn_bias=bias, scale=scale)
    return out.reshape(q.shape[0], heads, dim)


def _sdpa_reference(q, k, v, meta, scale, window):
    heads, kv_heads = q.shape[1], k.shape[1]
    if not meta.seqlens_q:
        return q.new_zeros(q.shape)
    # torch.split, not slicing: its backward concatenates the segments' gradients once, where
    # each slice's backward built a full-size zero gradient (28% of a tiny CPU training step).
    q_segs = torch.split(q, list(meta.seqlens_q))
    k_segs = torch.split(k, list(meta.seqlens_k))
    v_segs = torch.split(v, list(meta.seqlens_k))
    outs = []
    for q_seg, k_seg, v_seg in zip(q_segs, k_segs, v_segs):
        len_q, len_k = q_seg.shape[0], k_seg.shape[0]
        mask = None
        if len_k != len_q or (window is not None and len_k > window):
            # Bottom-right causal: query j sees keys up to j + (Lk - Lq), and with a window only
            # the last `window` of those.
            offset = len_k - len_q
            mask = torch.ones(len_q, len_k, dtype=torch.bool, device=q.device).tril(offset)
            if window is not None:
                mask = mask.triu(offset - window + 1)
        out = F.scaled_dot_product_attention(
            q_seg.transpose(0, 1), k_seg.transpose(0, 1), v_seg.transpose(0, 1),  # (H, L, D)
            attn_mask=mask, is_causal=mask is None, scale=scale, enable_gqa=heads != kv_heads)
        outs.append(out.transpose(0, 1))
    return torch.cat(outs, dim=0)


_BACKEND_FNS = {"flash_attn": _flash_attn, "torch_varlen": _torch_varlen,
                "xformers": _xformers, "sdpa_reference": _sdpa_reference}


def backend_unavailable_reason(backend: str, device, dtype) -> str | None:
    """Why `backend` cannot run tensors of this device and dtype, or None when it can."""
    device = torch.device(device)
    if backend not in _BACKEND_FNS:
        return f"unknown attention backend {backend!r}; choose one of {BACKENDS} or 'auto'"
    if backend == "sdpa_reference":
        return None
    if device.type != "cuda":
        return f"{backend} needs a CUDA device, got {device}"
    if dtype not in _HALF_DTYPES:
        return f"{backend} needs float16 or bfloat16 tensors, got {dtype}"
    if backend == "flash_attn":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "flash_attn is not installed (pip install -e .[flash])"
    elif backend == "torch_varlen":
        try:
            from torch.nn.attention.varlen import varlen_attn  # noqa: F401
        except ImportError:
            return f"torch {torch.__version__} has no torch.nn.attention.varlen (needs 2.10+)"
        if torch.cuda.get_device_capability(device) < (8, 0):
            return "torch's varlen FlashAttention needs compute capability 8.0 or newer"
    elif backend == "xformers":
        try:
            from xformers.ops import fmha  # noqa: F401
        except ImportError:
            return "xformers is not installed (pip install -e .[xformers])"
    return None


# (requested backend, device, dtype) -> backend that runs; resolved once, as every layer asks.
_RESOLVED: dict = {}


def resolve_backend(backend: str, device, dtype) -> str:
    """The backend that will run: `backend` itself when it can, the first usable one for "auto".

    Raises ValueError naming the reason when a named backend cannot run these tensors. The choice
    of "auto" is logged once per device and dtype.
    """
    device = torch.device(device)
    key = (backend, device, dtype)
    chosen = _RESOLVED.get(key)
    if chosen is not None:
        return chosen
    if backend != "auto":
        reason = backend_unavailable_reason(backend, device, dtype)
        if reason is not None:
            raise ValueError(f"attention backend {backend!r} cannot run here: {reason}")
        chosen = backend
    else:
        chosen = "sdpa_reference"
        if device.type == "cuda" and dtype in _HALF_DTYPES:
            chosen = next((b for b in _AUTO_ORDER
                           if backend_unavailable_reason(b, device, dtype) is None), chosen)
        log.info("hirfast packed attention: using the %s backend for %s %s tensors",
                 chosen, device.type, dtype)
    _RESOLVED[key] = chosen
    return chosen


def varlen_attention(query, key, value, meta: PackedAttentionMeta, *, scale=None,
                     sliding_window=None, backend="auto"):
    """Causal attention of every packed segment to its own keys (and its shared prefix's).

    query: [T, H, D]; key, value: [T, Hkv, D] with H a multiple of Hkv (grouped-query attention).
    Returns [T, H, D]. Equivalent, segment ``i`` by segment, to
    ``scaled_dot_product_attention(q_i, k_i, v_i, attn_mask=causal_lower_right)`` where
    ``q_i = query[cu_q[i]:cu_q[i+1]]`` and ``k_i = key[kv_index][cu_k[i]:cu_k[i+1]]``.
    """
    if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
        raise ValueError(f"varlen_attention takes [tokens, heads, head_dim] tensors, got query "
                         f"{tuple(query.shape)}, key {tuple(key.shape)}, "
                         f"value {tuple(value.shape)}")
    if query.shape[1] % key.shape[1] != 0:
        raise ValueError(f"query heads ({query.shape[1]}) must be a multiple of key/value heads "
                         f"({key.shape[1]})")
    total_q = sum(meta.seqlens_q)
    if query.shape[0] != total_q:
        raise ValueError(f"the packed batch has {total_q} query tokens but the query holds "
                         f"{query.shape[0]}; was the model called with another batch's metadata?")
    if meta.kv_index is not None:
        key = key.index_select(0, meta.kv_index)
        value = value.index_select(0, meta.kv_index)
    if key.shape[0] != sum(meta.seqlens_k):
        raise ValueError(f"the packed batch has {sum(meta.seqlens_k)} key tokens but the key "
                         f"holds {key.shape[0]}")
    if scale is None:
        scale = query.shape[-1] ** -0.5
    if sliding_window is not None and meta.max_seqlen_k <= sliding_window:
        sliding_window = None  # the window never binds: keep the fast unwindowed kernels
    name = resolve_backend(backend, query.device, query.dtype)
    return _BACKEND_FNS[name](query, key, value, meta, scale, sliding_window)


def _one_dtype(query, key, value):
    """q, k and v in the dtype the kernels run in: the autocast dtype under autocast, where RoPE's
    fp32 cos/sin leave q and k in fp32 next to a bf16 v (and "auto" would resolve on fp32 to the
    per-segment loop), as transformers' own flash-attention path casts them."""
    device_type = query.device.type
    if torch.is_autocast_enabled(device_type):
        target = torch.get_autocast_dtype(device_type)
        return query.to(target), key.to(target), value.to(target)
    if not query.dtype == key.dtype == value.dtype:
        raise ValueError(f"packed attention needs query, key and value of the same dtype (or "
                         f"autocast), got {query.dtype}, {key.dtype}, {value.dtype}")
    return query, key, value


def _hf_attention_for(backend: str):
    """A transformers attention function (module, q, k, v, mask, **kwargs) -> (out, None)."""

    def packed_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                                 scaling=None, sliding_window=None, softcap=None,
                                 hirfast_packing: PackedAttentionMeta | None = None,
                                 cu_seq_lens_q=None, cu_seq_lens_k=None, max_length_q=None,
                                 max_length_k=None, **kwargs):
        # query: (1, H, T, D); key, value: (1, Hkv, T, D). The mask transformers built (None with
        # transformers 5.x for an attention name it does not know) is implied by the segments.
        if dropout:
            raise NotImplementedError(f"packed attention runs without dropout, got {dropout}")
        if softcap is not None or kwargs.get("s_aux") is not None:
            raise NotImplementedError("packed attention supports neither logit softcapping nor "
                                      "attention sinks (models outside the Llama, Qwen and "
                                      "Mistral families)")
        if kwargs.get("is_causal") is False:
            raise NotImplementedError("packed attention is causal only")
        if query.shape[0] != 1:
            raise ValueError(f"a packed batch is one sequence (batch size 1), got batch size "
                             f"{query.shape[0]}")
        query, key, value = _one_dtype(query, key, value)
        meta = hirfast_packing
        if meta is None:
            if cu_seq_lens_q is None:
                raise ValueError(
                    "packed attention needs the packing metadata: call the model with "
                    "hirfast_packing=... (see hirfast.packing.PackedBatch.model_inputs) or with "
                    "cu_seq_lens_q/cu_seq_lens_k/max_length_q/max_length_k")
            meta = PackedAttentionMeta.from_cu_seqlens(cu_seq_lens_q, cu_seq_lens_k,
                                                       max_length_q, max_length_k)
        out = varlen_attention(query[0].transpose(0, 1), key[0].transpose(0, 1),
                               value[0].transpose(0, 1), meta, scale=scaling,
                               sliding_window=sliding_window, backend=backend)
        return out.unsqueeze(0), None

    packed_attention_forward.__name__ = f"{ATTENTION_PREFIX}_{backend}_attention_forward"
    return packed_attention_forward


def _no_mask(*args, **kwargs):
    """Mask builder for packed attention: the segments carry the mask, so none is materialized."""
    return None


def attention_name(backend: str = "auto") -> str:
    """The name `register(backend)` gives in transformers' AttentionInterface."""
    return ATTENTION_PREFIX if backend == "auto" else f"{ATTENTION_PREFIX}_{backend}"


def register(backend: str = "auto") -> str:
    """Register packed attention with `backend` in transformers; returns the name to select it.

    Also registers a mask builder that returns None under that name (transformers 4.53+ would
    otherwise build a [T, T] mask for an attention name it knows, O(T^2) memory for nothing).
    """
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(
            f"unknown attention backend {backend!r}; choose one of {BACKENDS} or 'auto'")
    from transformers import AttentionInterface

    name = attention_name(backend)
    AttentionInterface.register(name, _hf_attention_for(backend))
    try:
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:  # transformers < 4.53 builds its masks inside each model
        return name
    AttentionMaskInterface.register(name, _no_mask)
    return name


class _RecomputeHooks:
    """Keeps a model's checkpointed layers on packed attention when backward re-runs them.

    With gradient checkpointing, backward re-runs each layer's forward after the
    ``packed_attention`` block has ended and the model's own attention is back: that attention
    would see the whole packed sequence as one causal row (rows attending to each other; a
    CheckpointError with non-reentrant checkpointing). A forward pre-hook on the modules inside
    every checkpointed layer (transformers' ``GradientCheckpointingLayer``) that read the config
    (the attention) records, inside the block, the packing metadata the module was called with;
    when it is called with that same metadata outside the block (the recomputation: checkpointing
    replays the call's own kwargs), the hook selects the packed attention for that call and the
    forward hook restores the model's. The hooks sit inside the layer, since transformers
    checkpoints the layer's ``forward`` (5.2x) or its ``__call__`` (earlier 5.x): hooks on the
    layer itself would not run again in the first case's recomputation.
    """

    def __init__(self, model):
        from torch.utils.weak import WeakIdKeyDictionary

        self.config = model.config
        self.inside = 0
        self.seen = WeakIdKeyDictionary()  # packing metadata (or cu_seq_lens_q) -> attention name
        self.saved = []
        try:
            from transformers.modeling_layers import GradientCheckpointingLayer
        except ImportError:  # transformers < 4.52 checkpoints in the model's loop, without hooks
            GradientCheckpointingLayer = ()
        hooked = {}
        for layer in model.modules():
            if not (GradientCheckpointingLayer and isinstance(layer, GradientCheckpointingLayer)):
                continue
            for module in layer.modules():
                config = getattr(module, "config", None)
                if (module is not layer and id(module) not in hooked
                        and hasattr(config, "_attn_implementation")):
                    module.register_forward_pre_hook(self._enter, with_kwargs=True)
                    module.register_forward_hook(self._leave, with_kwargs=True, always_call=True)
                    hooked[id(module)] = module
        self.layers = len(hooked)

    def __deepcopy__(self, memo):
        # copy.deepcopy(model) copies the hooks with the layers: the copy follows the copied
        # config and starts with no recorded passes.
        from torch.utils.weak import WeakIdKeyDictionary

        new = object.__new__(type(self))
        memo[id(self)] = new
        new.config = copy.deepcopy(self.config, memo)
        new.inside, new.saved, new.layers, new.seen = 0, [], self.layers, WeakIdKeyDictionary()
        return new

    @staticmethod
    def _key(kwargs):
        meta = kwargs.get("hirfast_packing")
        return meta if meta is not None else kwargs.get("cu_seq_lens_q")

    def _enter(self, module, args, kwargs):
        key = self._key(kwargs)
        previous = None
        if key is not None:
            if self.inside:
                self.seen[key] = self.config._attn_implementation
            else:
                name = self.seen.get(key)
                if name is not None and name != self.config._attn_implementation:
                    previous = self.config._attn_implementation
                    self.config._attn_implementation = name
        self.saved.append(previous)

    def _leave(self, module, args, kwargs, output):
        previous = self.saved.pop() if self.saved else None
        if previous is not None:
            self.config._attn_implementation = previous


def _recompute_hooks(model) -> _RecomputeHooks:
    hooks = model.__dict__.get("_hirfast_recompute_hooks")
    if hooks is None or hooks.config is not model.config:
        hooks = _RecomputeHooks(model)
        model.__dict__["_hirfast_recompute_hooks"] = hooks
    return hooks


@contextlib.contextmanager
def packed_attention(model, backend: str = "auto"):
    """Within the block, `model` (an unmodified Hugging Face model) attends over packed batches.

    Sets ``model.config._attn_implementation`` to ``register(backend)`` and restores the previous
    value on exit, so generation or padded calls outside the block keep their own attention. With
    gradient checkpointing, the layers that backward re-runs after the block attend as they did
    inside it (see ``_RecomputeHooks``).
    """
    name = register(backend)
    hooks = _recompute_hooks(model)
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = name
    hooks.inside += 1
    try:
        yield name
    finally:
        hooks.inside -= 1
        config._attn_implementation = previous
