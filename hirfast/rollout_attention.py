"""The rollout engine's attention (see `hirfast.rollout`): a function registered with transformers'
`AttentionInterface` that, inside `generate`, writes each layer's new keys and values into the KV
pool and attends over it. Prefill: packed prompts, each causal over itself. Decode: one new token
per row over its cache row, masked at the row's own length (and sliding window).
"""
from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

ATTENTION_NAME = "hirfast_rollout"

_ACTIVE = threading.local()


def _rollout_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                       sliding_window=None, **kwargs):
    """AttentionInterface entry: query (B, Hq, T, D), key/value (B, Hkv, T, D) of the new tokens,
    already rotated; returns (B, T, Hq, D). The model's own mask is not used (none is built for an
    implementation that has no mask function registered)."""
    context = getattr(_ACTIVE, "context", None)
    if context is None:
        raise RuntimeError(f"the '{ATTENTION_NAME}' attention only runs inside hirfast.rollout.generate")
    context.calls += 1
    return context.attend(module.layer_idx, query, key, value, scaling, sliding_window), None


class _AttentionScope:
    """Routes the model's attention to `context` for one forward (or one graph capture)."""

    def __init__(self, context):
        self.context = context

    def __enter__(self):
        _ACTIVE.context = self.context
        return self.context

    def __exit__(self, *exc):
        _ACTIVE.context = None


class _ModelAttentionSwitch:
    """Sets every config of the model to the rollout attention, and back on exit.

    The attention modules read `config._attn_implementation` at each forward; setting it directly
    (rather than through `set_attn_implementation`) avoids re-validating, on the way back, an
    implementation such as flash-attn that the caller had chosen."""

    _registered = False

    def __init__(self, model):
        if not _ModelAttentionSwitch._registered:
            from transformers import AttentionInterface

            AttentionInterface.register(ATTENTION_NAME, _rollout_attention)
            _ModelAttentionSwitch._registered = True
        configs = {}
        for module in model.modules():
            config = getattr(module, "config", None)
            if config is not None and hasattr(config, "_attn_implementation"):
                configs[id(config)] = config
        self.configs = list(configs.values())

    def __enter__(self):
        self.saved = [config._attn_implementation for config in self.configs]
        for config in self.configs:
            config._attn_implementation = ATTENTION_NAME
        return self

    def __exit__(self, *exc):
        for config, value in zip(self.configs, self.saved):
            config._attn_implementation = value


def _expand_kv_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def _prompt_attention(q, k, v, scale, window):
    """Causal attention of one prompt over itself: q (1, Hq, L, D), k/v (1, Hkv, L, D)."""
    groups = q.shape[1] // k.shape[1]
    length = q.shape[2]
    if window is not None and window < length:
        # A mask: the memory-efficient kernel runs it, and takes K/V only repeated per query head
        # (with enable_gqa, SDPA would fall back to its math kernel).
        k, v = _expand_kv_heads(k, groups), _expand_kv_heads(v, groups)
        pos = torch.arange(length, device=q.device)
        mask = (pos[None, :] <= pos[:, None]) & (pos[None, :] > pos[:, None] - window)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    # Causal, no mask: the flash kernel takes grouped K/V as they are (no copy per query head);
    # on the CPU the result is bit for bit the repeated one's.
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                          enable_gqa=groups > 1)


class _PrefillAttention:
    """Packed prompts in one row: segment i is tokens [start, start+length) of the row, and its keys
    and values go to cache rows [row, row+rows) (all the samples forked from that prompt)."""

    def __init__(self, kv: torch.Tensor, segments: list[tuple[int, int, int, int]]):
        self.kv = kv
        self.segments = segments
        self.calls = 0

    def attend(self, layer, q, k, v, scale, window):
        k_cache, v_cache = self.kv[layer, 0], self.kv[layer, 1]
        outputs = []
        for start, length, row, rows in self.segments:
            k_seg = k[:, :, start:start + length]
            v_seg = v[:, :, start:start + length]
            k_cache[row:row + rows, :, :length] = k_seg
            v_cache[row:row + rows, :, :length] = v_seg
            outputs.append(_prompt_attention(q[:, :, start:start + length], k_seg, v_seg, scale, window))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return out.transpose(1, 2)


class _DecodeAttention:
    """One new token for each of rows 0..rows-1, at `positions[row]`; attends over the first
    `kv_len` positions of its cache row, masked at its own length (and sliding window)."""

    def __init__(self, kv: torch.Tensor, row_index: torch.Tensor, positions: torch.Tensor, kv_len: int):
        self.kv = kv
        self.row_index = row_index
        self.positions = positions
        self.kv_len = kv_len
        self.key_positions = torch.arange(kv_len, device=kv.device)
        self.causal = self.key_positions[None, :] <= positions[:, None]
        self.window_masks: dict[int, torch.Tensor] = {}
        self.calls = 0

    def _mask(self, window):
        if window is None:
            return self.causal
        mask = self.window_masks.get(window)
        if mask is None:
            mask = self.causal & (self.key_positions[None, :] > self.positions[:, None] - window)
            self.window_masks[window] = mask
        return mask

    def attend(self, layer, q, k, v, scale, window):
        k_cache, v_cache = self.kv[layer, 0], self.kv[layer, 1]
        k_cache[self.row_index, :, self.positions] = k[:, :, 0].to(k_cache.dtype)
        v_cache[self.row_index, :, self.positions] = v[:, :, 0].to(v_cache.dtype)
        rows, q_heads, _, head_dim = q.shape
        kv_heads = k.shape[1]
        # The query heads sharing a kv head become that head's query rows: K and V are read once
        # per kv head instead of being repeated per query head.
        grouped = q.reshape(rows, kv_heads, q_heads // kv_heads, head_dim)
        out = F.scaled_dot_product_attention(
            grouped, k_cache[:rows, :, :self.kv_len], v_cache[:rows, :, :self.kv_len],
            attn_mask=self._mask(window)[:, None, None, :], scale=scale)
        return out.reshape(rows, 1, q_heads, head_dim)
