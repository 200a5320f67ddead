"""The rollout's memory plan and its input checks (``hirfast.rollout`` is the engine).

``plan_cache`` sizes the KV pool (rows x positions, K and V of every layer, plus the fp32 sampling
buffers) from the request and a byte budget and raises ``CacheBudgetError`` with the numbers when
even one prompt's ``n`` samples cannot fit; ``_default_budget`` is the share of free memory taken
when the caller gives none; ``_roomier_plan`` lengthens a CUDA-graph engine's rows when the budget
allows, so later calls reuse it. ``_check_prompts`` and ``_check_sampling`` turn bad arguments into
errors that name the argument and the value.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

import numpy as np
import torch

# fp32 [rows, vocab] buffers alive at once while sampling: logits, scaled/sorted logits, probs, cdf.
_SAMPLING_BUFFERS_PER_ROW = 4
# Decode-step CUDA graphs are captured per bucket: kv length rounded up to a multiple of this (reads
# at most 127 masked positions per row), batch rounded up on a ~1.5x ladder (at most a third idle;
# hirfast.rollout's _batch_bucket and _kv_bucket).
_KV_LEN_BUCKET = 128
# A new engine for CUDA graphs gets rows this much longer (then rounded up to a kv bucket) when
# the budget gives as many rows, so that the next call with a somewhat longer prompt reuses it and
# its graphs instead of building a new engine and capturing every graph again.
_ENGINE_LEN_HEADROOM = 1.25
# Share of free memory the pool may take when no budget is given; the rest stays for activations of
# the prefill and the caller's own tensors (on the CPU, also for everything else on the machine).
_GPU_FREE_FRACTION = 0.8
_CPU_FREE_FRACTION = 0.5


class CacheBudgetError(ValueError):
    """The KV cache the request needs does not fit the memory budget given."""


@dataclasses.dataclass(frozen=True)
class CachePlan:
    """The KV pool of one rollout: `slots` rows of `max_len` positions, K and V of every layer."""

    slots: int
    max_len: int
    bytes_per_token: int      # keys + values of all layers for one position
    cache_bytes: int          # slots * max_len * bytes_per_token
    workspace_bytes: int      # fp32 sampling buffers for `slots` rows

    @property
    def total_bytes(self) -> int:
        return self.cache_bytes + self.workspace_bytes


def _geometry(config) -> tuple[int, int, int, int]:
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return layers, kv_heads, head_dim, config.vocab_size


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.3f} GiB"


def plan_cache(config, *, sequences: int, group_size: int, max_len: int, dtype: torch.dtype,
               max_batch_size: int | None = None, budget_bytes: int | None = None) -> CachePlan:
    """Size the KV pool: how many sequences decode together (`slots`) and how long a row is.

    sequences:      all sequences of the request (prompts x n);
    group_size:     sequences forked from one prefill, which must be live together (n);
    max_len:        positions a row must hold (longest prompt + max_new_tokens - 1);
    max_batch_size: most sequences decoded together (None: as many as the budget allows);
    budget_bytes:   memory for the pool and the sampling workspace (None: no limit).
    Raises CacheBudgetError when `max_batch_size` sequences, or one group, do not fit the budget.
    """
    layers, kv_heads, head_dim, vocab = _geometry(config)
    elem = torch.empty((), dtype=dtype).element_size()
    per_token = layers * 2 * kv_heads * head_dim * elem
    per_row = per_token * max_len + vocab * 4 * _SAMPLING_BUFFERS_PER_ROW
    group = min(group_size, sequences)
    if max_batch_size is not None and max_batch_size < group:
        raise CacheBudgetError(
            f"max_batch_size={max_batch_size} is smaller than n={group_size}: the n samples of a prompt "
            f"are forked from one prefill and decode together; use max_batch_size >= {group_size}")
    wanted = sequences if max_batch_size is None else min(max_batch_size, sequences)
    slots = wanted
    if budget_bytes is not None:
        fit = budget_bytes // per_row
        need_note = (f"each sequence needs {_gib(per_row)} ({layers} layers x K,V x {kv_heads} kv heads x "
                     f"{head_dim} head_dim x {max_len} positions x {elem} bytes, + fp32 sampling buffers "
                     f"over {vocab} tokens)")
        if max_batch_size is not None and fit < wanted:
            raise CacheBudgetError(
                f"KV cache for max_batch_size={wanted} x max_len={max_len} needs {_gib(wanted * per_row)}, "
                f"budget is {_gib(budget_bytes)}: {need_note}; lower max_batch_size or max_new_tokens, "
                f"or raise cache_budget_bytes")
        if fit < group:
            raise CacheBudgetError(
                f"KV cache budget {_gib(budget_bytes)} cannot hold one prompt's n={group} samples of "
                f"max_len={max_len} ({_gib(group * per_row)}): {need_note}; lower n or max_new_tokens, "
                f"or raise cache_budget_bytes")
        slots = min(wanted, fit)
    return CachePlan(slots=slots, max_len=max_len, bytes_per_token=per_token,
                     cache_bytes=slots * max_len * per_token,
                     workspace_bytes=slots * vocab * 4 * _SAMPLING_BUFFERS_PER_ROW)


def _default_budget(device: torch.device, held_bytes: int) -> int | None:
    """A share of the memory still free on the device, counting the pool this model already holds."""
    if device.type == "cuda":
        # mem_get_info does not count what PyTorch's caching allocator holds unused (the
        # training step's freed activations), which this engine's pool can reuse.
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        free = torch.cuda.mem_get_info(device)[0] + cached
        return int((free + held_bytes) * _GPU_FREE_FRACTION)
    if device.type == "cpu" and hasattr(os, "sysconf"):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
        return int((available + held_bytes) * _CPU_FREE_FRACTION)
    return None


def _roomier_plan(plan: CachePlan, config, *, max_positions, **plan_args) -> CachePlan:
    """`plan` with rows `_ENGINE_LEN_HEADROOM` times longer, rounded up to a kv bucket (no longer
    than the model's positions), when the budget gives that the same number of rows; else `plan`."""
    longer = math.ceil(plan.max_len * _ENGINE_LEN_HEADROOM / _KV_LEN_BUCKET) * _KV_LEN_BUCKET
    if max_positions is not None:
        longer = min(longer, -(-max_positions // _KV_LEN_BUCKET) * _KV_LEN_BUCKET)
    if longer <= plan.max_len:
        return plan
    try:
        roomier = plan_cache(config, max_len=longer, **plan_args)
    except CacheBudgetError:
        return plan
    return roomier if roomier.slots == plan.slots else plan


def _check_prompts(prompts, vocab: int, max_positions: int | None) -> list[list[int]]:
    if isinstance(prompts, torch.Tensor) or not isinstance(prompts, Sequence) or isinstance(prompts, str):
        raise TypeError(f"prompts must be a list of token-id lists, got {type(prompts).__name__}")
    checked = []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, torch.Tensor):
            if prompt.dim() != 1:
                raise ValueError(f"prompts[{index}] must be 1-D token ids, got shape {tuple(prompt.shape)}")
            prompt = prompt.tolist()
        elif isinstance(prompt, (str, bytes)) or not isinstance(prompt, Sequence):
            raise TypeError(f"prompts[{index}] must be a list of token ids, got {type(prompt).__name__}")
        ids = []
        for position, token in enumerate(prompt):
            if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
                raise TypeError(f"prompts[{index}][{position}] is {token!r}: token ids must be integers")
            if not 0 <= token < vocab:
                raise ValueError(f"prompts[{index}][{position}] = {token} is outside the vocabulary [0, {vocab})")
            ids.append(int(token))
        if not ids:
            raise ValueError(f"prompts[{index}] is empty: a prompt needs at least one token (e.g. BOS)")
        if max_positions is not None and len(ids) > max_positions:
            raise ValueError(
                f"prompts[{index}] has {len(ids)} tokens, more than the model's max_position_embeddings "
                f"= {max_positions}; truncate it")
        checked.append(ids)
    return checked


def _check_sampling(n, max_new_tokens, temperature, top_p, top_k, stop_token_ids, seed, vocab,
                    stop_check_interval=None):
    def is_int(x):
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not is_int(top_k) or top_k < 0:
        raise ValueError(f"top_k must be an integer >= 0 (0 = off), got {top_k!r}")
    if not is_int(seed):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if stop_check_interval is not None and (not is_int(stop_check_interval) or stop_check_interval < 1):
        raise ValueError(f"stop_check_interval must be an integer >= 1, got {stop_check_interval!r}")
    stops = []
    for token in ([] if stop_token_ids is None else stop_token_ids):
        if not is_int(token) or not 0 <= token < vocab:
            raise ValueError(f"stop_token_ids contains {token!r}, not a token id in [0, {vocab})")
        if int(token) not in stops:
            stops.append(int(token))
    return stops
