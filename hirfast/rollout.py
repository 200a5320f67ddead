"""Rollout: batched sampling for RL, with one prefill per prompt and the sampling log-probs recorded.

`generate(model, prompts, n=..., ...)` returns, for every prompt, `n` completions with their token
ids, the fp32 log-prob of every sampled token under the distribution it was drawn from, its log-prob
and the entropy under the untruncated temperature-scaled softmax (no top-k/top-p), and why each one
ended. The trainer uses the untruncated log-probs as `logπ_old` and never recomputes them, and the
entropies to score replay candidates.

How it differs from Hugging Face `generate(num_return_sequences=n)`:

- **One prefill per distinct prompt.** The prompt runs through the model once; its keys and values
  are written straight into the cache rows of all its `n` samples (a copy per sample, so every
  sample then decodes from its own row). Several prompts are prefilled in one forward, packed
  end to end with restarting position ids; attention stays within each prompt.
- **Finished sequences leave the batch.** The cache is a fixed pool of `slots` rows of `max_len`
  positions. Live sequences occupy rows `0..B-1`; when some finish, the last live rows move into
  their places (a copy of their keys and values) and the decode batch shrinks. Freed rows take the
  next waiting prompts (continuous batching), so the pool can be smaller than the whole request.
- **Prompts of any lengths in one batch.** Every row stores its sequence from position 0; decode
  attention masks each row at its own length. No padding tokens are ever run through the model.
- **Attention is ours, the rest is the model's.** A function registered with transformers'
  `AttentionInterface` (`hirfast.rollout_attention`, active only inside `generate`) writes the new
  keys and values into the pool and attends over it; embeddings, RoPE, norms, MLPs and the lm_head
  are the model's own code, called with `use_cache=False`, so no transformers cache class is
  involved (their API differs between 4.x and 5.x; tested with 5.24). An implementation name
  without a registered mask function makes transformers skip building a causal mask, which this
  attention does not need.
- **On a GPU, each decode step is a CUDA graph** captured per (batch bucket, length bucket) over the
  static pool and static per-row state, with the sampling inside the graph; graphs and pool are kept
  between calls for the same model (`release(model)` frees them). On the CPU, the same step runs
  eagerly at the exact batch size and length.
- **Sampling is counter-based** (see `hirfast.rollout_sampling`): a sequence's draws depend only on
  `(seed, prompt index, sample index, step)`, not on the batch it shared or the cache budget.

Memory: the pool holds `slots x max_len` positions of keys and values for every layer; `plan_cache`
(`hirfast.rollout_plan`, with the argument checks)
sizes it from the request (`max_batch_size`, prompt lengths + `max_new_tokens`) and the byte budget,
and raises `CacheBudgetError` with the numbers when even one prompt's `n` samples cannot fit.
"""
from __future__ import annotations

import dataclasses
import time
import weakref
from collections import deque
from typing import Callable, Literal, Sequence

import numpy as np
import torch

from hirfast.rollout_attention import (ATTENTION_NAME, _AttentionScope, _DecodeAttention,  # noqa: F401
                                       _ModelAttentionSwitch, _PrefillAttention)
from hirfast.rollout_plan import (_KV_LEN_BUCKET, CacheBudgetError, CachePlan,  # noqa: F401
                                  _check_prompts, _check_sampling, _default_budget, _geometry,
                                  _roomier_plan, plan_cache)
from hirfast.rollout_sampling import counter_uniforms, draw_tokens, sample_tokens

# Key lengths the decode graphs read, rounded up from the longest live row:
#   "linear": to a multiple of 128 (at most 127 masked positions read per row; a new graph every
#             128 tokens of a rollout);
#   "pow2":   to 128 x a power of two (at most 2x the positions read; log2 as many graphs);
#   "max":    always the whole cache row, so graphs are keyed by batch bucket only (the length
#             mask does the rest; reads every position of the row every step).
KV_BUCKET_MODES = ("linear", "pow2", "max")
_DEFAULT_KV_BUCKETS = "linear"
_STOP_CAPACITY = 64
# With stop tokens, the finished flags are read back from the device (a host sync) every this
# many decode steps on a GPU, and when a row reaches its token limit; a row that stopped in
# between is frozen on the device (no position or count advance, its outputs not recorded).
_GPU_STOP_CHECK_INTERVAL = 8
_DEFAULT_PREFILL_TOKENS = 8192
# Rows moved per copy when finished rows leave the batch (bounds the gather's temporary).
_COMPACT_ROWS = 16


@dataclasses.dataclass
class Completion:
    """One sampled continuation of a prompt.

    token_ids:     the generated tokens, the stop token included when one ended it.
    logprobs, full_logprobs, entropies: None when `generate` ran with `record_logprobs=False`.
    logprobs:      (len(token_ids),) float32 on the CPU: log-prob of each token under the distribution
                   it was sampled from (temperature-scaled, renormalized after top-k/top-p; at
                   temperature 0, the temperature-1 distribution after top-k/top-p).
    finish_reason: "stop" when the last token is one of `stop_token_ids`; "length" when
                   `max_new_tokens` (or the model's maximum positions) was reached first.
    full_logprobs: (len(token_ids),) float32: log-prob of each token under the untruncated
                   temperature-scaled softmax (no top-k/top-p; temperature 1 when greedy), the
                   distribution a training forward computes: the trainer's log pi_old.
    entropies:     (len(token_ids),) float32: entropy of that untruncated distribution at each step.
    """

    token_ids: list[int]
    logprobs: torch.Tensor | None
    finish_reason: Literal["stop", "length"]
    full_logprobs: torch.Tensor | None = None
    entropies: torch.Tensor | None = None


@dataclasses.dataclass
class RolloutStats:
    """What one `generate` call did (counts are exact, `seconds` is wall time)."""

    prompts: int = 0
    distinct_prompts: int = 0
    sequences: int = 0
    prefill_calls: int = 0        # model forwards over packed prompts
    prefill_tokens: int = 0       # prompt tokens run through the model
    decode_steps: int = 0         # one-token forwards of the live batch
    generated_tokens: int = 0
    slots: int = 0                # cache rows (most sequences decoded together)
    cache_len: int = 0            # positions per cache row
    cache_bytes: int = 0
    cuda_graphs_captured: int = 0
    stop_flag_reads: int = 0      # device-to-host reads of the stop flags (host syncs)
    seconds: float = 0.0


class Rollout(list):
    """`list[list[Completion]]`: one list of `n` completions per prompt, in prompt order; `.stats`
    holds the call's `RolloutStats`."""

    stats: RolloutStats


# --------------------------------------------------------------------------------------------------
# The engine: the pool, the per-row state, prefill, decode steps, compaction.

def _batch_bucket(rows: int, slots: int) -> int:
    """Smallest of 1, 2, 3, 4, 6, 8, 12, 16, ... (powers of two and their 1.5x) >= rows."""
    bucket = 1
    while bucket < rows:
        power_of_two = bucket & (bucket - 1) == 0
        bucket = 2 if bucket == 1 else (bucket * 3 // 2 if power_of_two else bucket * 4 // 3)
    return min(bucket, slots)


def _kv_bucket(length: int, max_len: int, mode: str = "linear") -> int:
    if mode == "max":
        return max_len
    if mode == "pow2":
        bucket = _KV_LEN_BUCKET
        while bucket < length:
            bucket *= 2
        return min(max_len, bucket)
    return min(max_len, -(-length // _KV_LEN_BUCKET) * _KV_LEN_BUCKET)


@dataclasses.dataclass
class _Unit:
    """A distinct prompt and the sequences forked from its single prefill."""

    prompt: list[int]
    seq_ids: list[int]


@dataclasses.dataclass(frozen=True)
class _Sampling:
    temperature: float
    top_k: int
    top_p: float
    has_stop: bool
    record: bool = True   # log-probs and entropies computed and kept (off: tokens only)

    def draw(self, logits: torch.Tensor, uniforms: torch.Tensor):
        """The tokens drawn, and (log-probs, full log-probs, entropies) when recorded, else None."""
        knobs = dict(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)
        if not self.record:
            return draw_tokens(logits, uniforms, **knobs), None
        tokens, *recorded = sample_tokens(logits, uniforms, full=True, **knobs)
        return tokens, recorded


class _Engine:
    def __init__(self, model, plan: CachePlan, device: torch.device, dtype: torch.dtype,
                 use_cuda_graphs: bool):
        layers, kv_heads, head_dim, _ = _geometry(model.config)
        self.layers = layers
        self.plan, self.device, self.dtype = plan, device, dtype
        self.slots, self.max_len = plan.slots, plan.max_len
        self.use_cuda_graphs = use_cuda_graphs
        # Graphs are captured per bucket of (rows, kv length); rows past the live batch idle along.
        self.pad_to_buckets = use_cuda_graphs
        self.kv = torch.zeros(layers, 2, plan.slots, kv_heads, plan.max_len, head_dim, dtype=dtype,
                              device=device)
        def zeros(dtype=torch.long):
            return torch.zeros(plan.slots, dtype=dtype, device=device)

        # Per-row state of the live batch, rows 0..B-1. positions: position of the token in `tokens`
        # (the next input); steps: tokens generated so far (the index of the next one); live: 1 for
        # live rows, 0 for idle rows of a padded graph batch (they then stay put at position 0).
        self.tokens, self.positions, self.seq_ids, self.steps, self.live = (zeros() for _ in range(5))
        self.stopped = zeros(torch.bool)
        self.step_active = zeros(torch.bool)  # rows that made a token in the last decode step
        self.next_tokens = zeros()
        self.next_logprobs = zeros(torch.float32)
        self.next_full_logprobs = zeros(torch.float32)
        self.next_entropies = zeros(torch.float32)
        self.row_index = torch.arange(plan.slots, device=device)
        self.seed = torch.zeros((), dtype=torch.long, device=device)
        self.stop_ids = torch.full((_STOP_CAPACITY,), -1, dtype=torch.long, device=device)
        self.graphs: dict = {}
        self.graph_pool = torch.cuda.graph_pool_handle() if use_cuda_graphs else None
        self.kv_buckets = _DEFAULT_KV_BUCKETS
        self.param_fingerprint = None

    def fits(self, plan: CachePlan, device, dtype, use_cuda_graphs, budget_bytes) -> bool:
        return (self.slots >= plan.slots and self.max_len >= plan.max_len and self.device == device
                and self.dtype == dtype and self.use_cuda_graphs == use_cuda_graphs
                and (budget_bytes is None or self.plan.total_bytes <= budget_bytes))

    # ---- one call ----------------------------------------------------------------------------
    def run(self, model, units: list[_Unit], *, slots: int, prompt_lens: np.ndarray, limits: np.ndarray,
            sampling: _Sampling, seed: int, stop_ids: list[int], max_new_tokens: int,
            prefill_tokens: int, stats: RolloutStats, stop_check_interval: int = 1,
            progress: Callable[[int], object] | None = None):
        fingerprint = tuple(p.data_ptr() for p in model.parameters())
        if fingerprint != self.param_fingerprint:  # weights were re-allocated: graphs read old memory
            self.graphs.clear()
            self.param_fingerprint = fingerprint
        self.seed.fill_(seed & (2**63 - 1))
        self.stop_ids.fill_(-1)
        if stop_ids:
            self.stop_ids[:len(stop_ids)] = torch.tensor(stop_ids, dtype=torch.long, device=self.device)
        sequences = len(prompt_lens)
        # One column more than any completion: frozen rows (stopped, not yet read back) write there.
        columns = max(max_new_tokens, 1) + 1
        self.scratch_column = columns - 1
        self.out_tokens = torch.zeros(sequences, columns, dtype=torch.long, device=self.device)
        self.out_logprobs = self.out_full_logprobs = self.out_entropies = None
        if sampling.record:
            self.out_logprobs, self.out_full_logprobs, self.out_entropies = (
                torch.zeros(sequences, columns, dtype=torch.float32, device=self.device)
                for _ in range(3))
        self.progress = progress
        self.stop_check_interval = max(1, int(stop_check_interval))
        self.steps_since_check = 0
        self.stats = stats
        self.seq_len = np.zeros(sequences, dtype=np.int64)
        self.seq_stopped = np.zeros(sequences, dtype=bool)
        # Host mirror of rows 0..B-1: sequence, tokens generated, limit, position of the next input.
        self.row_seq = np.zeros(self.slots, dtype=np.int64)
        self.row_count = np.zeros(self.slots, dtype=np.int64)
        self.row_limit = np.zeros(self.slots, dtype=np.int64)
        self.row_pos = np.zeros(self.slots, dtype=np.int64)
        self.batch = 0
        self.live.zero_()
        self.positions.zero_()
        self.steps.zero_()
        pending = deque(units)
        while pending or self.batch:
            admitted, free, tokens = [], slots - self.batch, 0
            while pending and len(pending[0].seq_ids) <= free:
                unit = pending[0]
                if admitted and tokens + len(unit.prompt) > prefill_tokens:
                    break
                admitted.append(pending.popleft())
                free -= len(unit.seq_ids)
                tokens += len(unit.prompt)
            if admitted:
                self._prefill(model, admitted, prompt_lens, limits, sampling, stats)
                self.steps_since_check += 1
                self._retire_finished(sampling)
            if self.batch:
                self._decode(model, sampling, stats)
                self.steps_since_check += 1
                self._retire_finished(sampling)
        result = (self.out_tokens, self.out_logprobs, self.out_full_logprobs, self.out_entropies,
                  self.seq_len, self.seq_stopped)
        # the engine may be kept; its outputs are not
        self.out_tokens = self.out_logprobs = self.out_full_logprobs = self.out_entropies = None
        self.stats = self.progress = None
        return result

    def _prefill(self, model, units, prompt_lens, limits, sampling, stats):
        ids, positions, segments, last = [], [], [], []
        seq_ids, seq_unit = [], []
        row, start = self.batch, 0
        for index, unit in enumerate(units):
            length = len(unit.prompt)
            ids.extend(unit.prompt)
            positions.extend(range(length))
            segments.append((start, length, row, len(unit.seq_ids)))
            last.append(start + length - 1)
            seq_ids.extend(unit.seq_ids)
            seq_unit.extend([index] * len(unit.seq_ids))
            row += len(unit.seq_ids)
            start += length
        device = self.device
        context = _PrefillAttention(self.kv, segments)
        with _AttentionScope(context):
            logits = model(input_ids=torch.tensor([ids], device=device),
                           position_ids=torch.tensor([positions], device=device), use_cache=False,
                           logits_to_keep=torch.tensor(last, device=device)).logits[0].float()
        if context.calls != self.layers:
            raise TypeError(
                f"{type(model).__name__} ran {context.calls} attention calls through transformers' "
                f"AttentionInterface for {self.layers} layers: hirfast.rollout needs a model whose "
                f"attention layers dispatch on config._attn_implementation (Llama, Qwen2, Qwen3, Mistral)")
        stats.prefill_calls += 1
        stats.prefill_tokens += len(ids)
        first, count = self.batch, len(seq_ids)
        rows = slice(first, first + count)
        seq_tensor = torch.tensor(seq_ids, device=device)
        zero_steps = torch.zeros(count, dtype=torch.long, device=device)
        uniforms = counter_uniforms(self.seed, seq_tensor, zero_steps)
        logits = logits[torch.tensor(seq_unit, device=device)]
        tokens, recorded = sampling.draw(logits, uniforms)
        if recorded is not None:
            for out, values in zip((self.out_logprobs, self.out_full_logprobs, self.out_entropies),
                                   recorded):
                out[seq_tensor, 0] = values
        self.out_tokens[seq_tensor, 0] = tokens
        seq_array = np.asarray(seq_ids, dtype=np.int64)
        self.tokens[rows] = tokens
        self.positions[rows] = torch.as_tensor(prompt_lens[seq_array], device=device)
        self.seq_ids[rows] = seq_tensor
        self.steps[rows] = 1
        self.live[rows] = 1
        if sampling.has_stop:
            self.stopped[rows] = (tokens[:, None] == self.stop_ids).any(-1)
        self.row_seq[rows] = seq_array
        self.row_count[rows] = 1
        self.row_limit[rows] = limits[seq_array]
        self.row_pos[rows] = prompt_lens[seq_array]
        self.batch += count
        stats.generated_tokens += count

    def _step(self, model, rows: int, kv_len: int, sampling: _Sampling):
        """One decode step of rows 0..rows-1 on the static state (the body of a CUDA graph)."""
        context = _DecodeAttention(self.kv, self.row_index[:rows], self.positions[:rows], kv_len)
        with _AttentionScope(context):
            logits = model(input_ids=self.tokens[:rows, None], position_ids=self.positions[:rows, None],
                           use_cache=False, logits_to_keep=1).logits[:, -1].float()
        uniforms = counter_uniforms(self.seed, self.seq_ids[:rows], self.steps[:rows])
        tokens, recorded = sampling.draw(logits, uniforms)
        if recorded is not None:
            for buf, values in zip((self.next_logprobs, self.next_full_logprobs, self.next_entropies),
                                   recorded):
                buf[:rows].copy_(values)
        self.next_tokens[:rows].copy_(tokens)
        live = self.live[:rows]
        if sampling.has_stop:
            # A row that stopped at an earlier step and is still in the batch (its flag not read
            # back yet) is frozen: it runs along, but neither advances nor records.
            stopped = self.stopped[:rows]
            live = live * (~stopped).long()
            self.step_active[:rows].copy_(live.bool())
            stopped |= (tokens[:, None] == self.stop_ids).any(-1) & live.bool()
        self.tokens[:rows].copy_(tokens)
        self.positions[:rows] += live
        self.steps[:rows] += live

    def _decode(self, model, sampling: _Sampling, stats: RolloutStats):
        batch = self.batch
        kv_len = int(self.row_pos[:batch].max()) + 1
        rows = batch
        if self.pad_to_buckets:
            rows = _batch_bucket(batch, self.slots)
            kv_len = _kv_bucket(kv_len, self.max_len, self.kv_buckets)
        if self.use_cuda_graphs:
            self._replay(model, rows, kv_len, sampling, stats)
        else:
            self._step(model, rows, kv_len, sampling)
        seq = self.seq_ids[:batch]
        index = self.steps[:batch] - 1
        if sampling.has_stop:  # frozen rows write to the scratch column
            index = torch.where(self.step_active[:batch], index, self.scratch_column)
        self.out_tokens[seq, index] = self.next_tokens[:batch]
        if sampling.record:
            self.out_logprobs[seq, index] = self.next_logprobs[:batch]
            self.out_full_logprobs[seq, index] = self.next_full_logprobs[:batch]
            self.out_entropies[seq, index] = self.next_entropies[:batch]
        self.row_count[:batch] += 1
        self.row_pos[:batch] += 1
        stats.decode_steps += 1
        stats.generated_tokens += batch

    def _replay(self, model, rows: int, kv_len: int, sampling: _Sampling, stats: RolloutStats):
        # Capture and replay on the model's GPU: torch.cuda.graph and Triton take the current one.
        with torch.cuda.device(self.device):
            self._replay_on_device(model, rows, kv_len, sampling, stats)

    def _replay_on_device(self, model, rows, kv_len, sampling, stats):
        key = (rows, kv_len, sampling)
        graph = self.graphs.get(key)
        if graph is None:
            # Warm up outside the capture (cuBLAS handles, lazy inits). The warm-up step writes the
            # same keys and values the real step will, and its state updates are undone.
            state = (self.tokens, self.positions, self.steps, self.stopped)
            saved = [t[:rows].clone() for t in state]
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._step(model, rows, kv_len, sampling)
            torch.cuda.current_stream(self.device).wait_stream(side)
            for t, s in zip(state, saved):
                t[:rows].copy_(s)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.graph_pool):
                self._step(model, rows, kv_len, sampling)
            self.graphs[key] = graph
            stats.cuda_graphs_captured += 1
        graph.replay()

    def _retire_finished(self, sampling: _Sampling):
        batch = self.batch
        done = self.row_count[:batch] >= self.row_limit[:batch]
        stopped = np.zeros(batch, dtype=bool)
        counts = self.row_count[:batch]
        if sampling.has_stop and (done.any() or self.steps_since_check >= self.stop_check_interval):
            # One read of the flags and counts (a host sync): the host's counts run ahead for
            # rows frozen since they stopped; the device's are theirs.
            flags = torch.stack((self.stopped[:batch].long(), self.steps[:batch])).cpu().numpy()
            self.stats.stop_flag_reads += 1
            self.steps_since_check = 0
            stopped = flags[0].astype(bool)
            counts = np.where(stopped, flags[1], counts)
            done = done | stopped
        if not done.any():
            return
        finished = np.nonzero(done)[0]
        seqs = self.row_seq[finished]
        self.seq_len[seqs] = counts[finished]
        self.seq_stopped[seqs] = stopped[finished]
        if self.progress is not None:
            self.progress(len(finished))
        kept = batch - len(finished)
        holes = finished[finished < kept]
        movers = np.nonzero(~done[kept:])[0] + kept
        if len(holes):
            self._move_kv_rows(holes, movers)
            dst = torch.as_tensor(holes, device=self.device)
            src = torch.as_tensor(movers, device=self.device)
            for t in (self.tokens, self.positions, self.seq_ids, self.steps, self.stopped):
                t[dst] = t[src]
            for a in (self.row_seq, self.row_count, self.row_limit, self.row_pos):
                a[holes] = a[movers]
        self.live[kept:batch] = 0
        self.positions[kept:batch] = 0
        self.stopped[kept:batch] = False
        self.batch = kept

    def _move_kv_rows(self, holes: np.ndarray, movers: np.ndarray):
        """Copies the keys and values of rows `movers` into rows `holes`: only the positions
        written so far (the host's next-input positions bound them), one layer and at most
        `_COMPACT_ROWS` rows at a time. The gather's temporary was one layer's whole `max_len`
        rows of every mover (470 MB for 50 rows of a Qwen2.5-7B layer at 4.6k positions, bf16),
        and before that every layer's (13 GB); now at most 16 rows' written positions."""
        used = min(int(self.row_pos[movers].max()), self.max_len)
        for start in range(0, len(holes), _COMPACT_ROWS):
            dst = torch.as_tensor(holes[start:start + _COMPACT_ROWS], device=self.device)
            src = torch.as_tensor(movers[start:start + _COMPACT_ROWS], device=self.device)
            for layer_kv in self.kv:
                layer_kv[:, dst, :, :used] = layer_kv[:, src, :, :used]


_ENGINES: "weakref.WeakKeyDictionary[torch.nn.Module, _Engine]" = weakref.WeakKeyDictionary()


def release(model) -> None:
    """Free the KV pool and CUDA graphs that `generate` keeps for `model` between calls."""
    engine = _ENGINES.pop(model, None)
    if engine is not None:
        device = engine.device
        del engine
        if device.type == "cuda":
            torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------------
# The public entry point.

def _rope_depends_on_length(config) -> bool:
    """Dynamic-NTK and LongRoPE recompute their frequencies from the longest position at every
    forward, a host-side decision a CUDA graph cannot replay."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return rope.get("rope_type", rope.get("type")) in ("dynamic", "longrope")


def generate(model, prompts: Sequence[Sequence[int]], *, n: int, max_new_tokens: int,
             temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
             stop_token_ids: Sequence[int] | None, seed: int, max_batch_size: int | None = None,
             cache_budget_bytes: int | None = None, prefill_tokens: int = _DEFAULT_PREFILL_TOKENS,
             use_cuda_graphs: bool | None = None, keep_cache: bool = True,
             stop_check_interval: int | None = None,
             cuda_graph_kv_buckets: str = _DEFAULT_KV_BUCKETS, record_logprobs: bool = True,
             progress: Callable[[int], object] | None = None) -> Rollout:
    """Sample `n` completions of every prompt with a Hugging Face causal LM.

    model:          a transformers causal LM whose attention goes through `AttentionInterface`
                    (Llama, Qwen2, Qwen3, Mistral, ...), on the device and in the dtype to run in.
    prompts:        token-id lists (or 1-D tensors), each non-empty and at most
                    `max_position_embeddings` long. Identical prompts share one prefill.
    n:              completions per prompt.
    max_new_tokens: most tokens per completion (0 returns empty completions without running the
                    model); a completion also stops at the model's `max_position_embeddings`.
    temperature, top_k, top_p: as in Hugging Face (`temperature=0` is greedy; `top_k=0` and `top_p=1`
                    are off); see `hirfast.rollout_sampling` for the exact semantics.
    stop_token_ids: tokens that end a completion (kept as its last token); None or () for none.
    seed:           sampling seed; sample j of prompt i draws from `(seed, i * n + j, step)` only, so
                    results do not depend on batch composition or the cache budget.
    max_batch_size: most sequences decoded together (default: all, within the budget); must be >= n.
    cache_budget_bytes: memory for the KV pool and the sampling buffers (default: 80% of the free
                    memory on a GPU, 50% of the available memory on the CPU). `CacheBudgetError` if one prompt's n
                    samples, or `max_batch_size` sequences, cannot fit.
    prefill_tokens: prompt tokens packed into one prefill forward (a longer prompt runs alone).
    use_cuda_graphs: capture decode steps as CUDA graphs (default: on a CUDA device).
    keep_cache:     keep the pool and graphs for the next call with this model (`release(model)`).
    stop_check_interval: with stop tokens, read the finished flags back from the device every this
                    many steps (default: 8 on a GPU, 1 on the CPU); a row that stopped in between
                    is frozen on the device, so outputs do not depend on it, only the host syncs.
    cuda_graph_kv_buckets: how the decode graphs round the key length up (`KV_BUCKET_MODES`):
                    "linear" (default) reads the fewest positions and captures the most graphs,
                    "max" captures one graph per batch bucket and reads whole rows.
    record_logprobs: compute and return the log-probs and entropies (default); False returns
                    only the tokens (`Completion.logprobs`, `.full_logprobs`, `.entropies` are
                    None), the same tokens, without the per-step log-sum-exp over the vocabulary.
    progress:       called with the number of sequences that just finished, as they finish
                    (e.g. a progress bar's `update`); sequences given no new tokens are not counted.

    Returns a `Rollout`: `rollout[i][j]` is the `Completion` (token_ids, logprobs, finish_reason,
    full_logprobs, entropies) of
    sample j of prompt i, and `rollout.stats` the call's `RolloutStats`.
    """
    started = time.perf_counter()
    config = model.config
    layers, kv_heads, head_dim, vocab = _geometry(config)
    max_positions = getattr(config, "max_position_embeddings", None)
    stops = _check_sampling(n, max_new_tokens, temperature, top_p, top_k, stop_token_ids, seed, vocab,
                            stop_check_interval)
    if cuda_graph_kv_buckets not in KV_BUCKET_MODES:
        raise ValueError(f"cuda_graph_kv_buckets must be one of {KV_BUCKET_MODES}, "
                         f"got {cuda_graph_kv_buckets!r}")
    checked = _check_prompts(prompts, vocab, max_positions)
    stats = RolloutStats(prompts=len(checked), sequences=len(checked) * n)
    prompt_lens = np.repeat(np.asarray([len(p) for p in checked], dtype=np.int64), n)
    limits = np.full(len(prompt_lens), max_new_tokens, dtype=np.int64)
    if max_positions is not None:
        limits = np.minimum(limits, max_positions - prompt_lens)
    units_by_prompt: dict[tuple[int, ...], _Unit] = {}
    for index, prompt in enumerate(checked):
        seqs = [index * n + j for j in range(n) if limits[index * n + j] > 0]
        if seqs:
            unit = units_by_prompt.setdefault(tuple(prompt), _Unit(prompt, []))
            unit.seq_ids.extend(seqs)
    units = list(units_by_prompt.values())
    stats.distinct_prompts = len({tuple(p) for p in checked})

    seq_len = np.zeros(len(prompt_lens), dtype=np.int64)
    seq_stopped = np.zeros(len(prompt_lens), dtype=bool)
    out_tokens = out_logprobs = out_full = out_entropies = None
    if units:
        if len(stops) > _STOP_CAPACITY:
            raise ValueError(f"at most {_STOP_CAPACITY} stop_token_ids are supported, got {len(stops)}")
        parameter = next(model.parameters())
        device, dtype = parameter.device, parameter.dtype
        if use_cuda_graphs is None:
            use_cuda_graphs = device.type == "cuda" and not _rope_depends_on_length(config)
        if use_cuda_graphs and device.type != "cuda":
            raise ValueError(f"use_cuda_graphs=True needs a model on a CUDA device, the model is on {device}")
        needed_len = max(int((prompt_lens + limits - 1)[u.seq_ids].max()) for u in units)
        if use_cuda_graphs:  # whole kv-length buckets: every graph reads a whole bucket of positions
            needed_len = -(-needed_len // _KV_LEN_BUCKET) * _KV_LEN_BUCKET
        budget = cache_budget_bytes
        if budget is None:
            engine = _ENGINES.get(model)
            budget = _default_budget(device, engine.plan.total_bytes if engine is not None else 0)
        sequences = sum(len(u.seq_ids) for u in units)
        plan = plan_cache(config, sequences=sequences, group_size=n, max_len=needed_len, dtype=dtype,
                          max_batch_size=max_batch_size, budget_bytes=budget)
        # A prompt repeated in the request forks more sequences than fit at once: split its unit.
        units = [_Unit(u.prompt, u.seq_ids[i:i + plan.slots]) for u in units
                 for i in range(0, len(u.seq_ids), plan.slots)]
        engine = _ENGINES.get(model)
        if engine is None or not engine.fits(plan, device, dtype, use_cuda_graphs, budget):
            release(model)
            if use_cuda_graphs:
                plan = _roomier_plan(plan, config, sequences=sequences, group_size=n, dtype=dtype,
                                     max_batch_size=max_batch_size, budget_bytes=budget,
                                     max_positions=max_positions)
            engine = _Engine(model, plan, device, dtype, use_cuda_graphs)
        engine.kv_buckets = cuda_graph_kv_buckets
        stats.slots, stats.cache_len, stats.cache_bytes = plan.slots, plan.max_len, plan.cache_bytes
        sampling = _Sampling(float(temperature), int(top_k), float(top_p), bool(stops),
                             bool(record_logprobs))
        if stop_check_interval is None:
            stop_check_interval = _GPU_STOP_CHECK_INTERVAL if device.type == "cuda" else 1
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), _ModelAttentionSwitch(model):
                out_tokens, out_logprobs, out_full, out_entropies, seq_len, seq_stopped = engine.run(
                    model, units, slots=plan.slots, prompt_lens=prompt_lens, limits=limits, sampling=sampling, seed=int(seed),
                    stop_ids=stops, max_new_tokens=max_new_tokens,
                    prefill_tokens=max(1, int(prefill_tokens)), stats=stats,
                    stop_check_interval=stop_check_interval, progress=progress)
                out_tokens, out_logprobs, out_full, out_entropies = (
                    None if t is None else t.cpu()
                    for t in (out_tokens, out_logprobs, out_full, out_entropies))
        finally:
            model.train(was_training)
            if keep_cache:
                _ENGINES[model] = engine
            else:
                release(model)

    rollout = Rollout()
    for index in range(len(checked)):
        group = []
        for seq in range(index * n, (index + 1) * n):
            length = int(seq_len[seq])
            if not record_logprobs:
                token_ids = [] if out_tokens is None or length == 0 else out_tokens[seq, :length].tolist()
                logprobs = full = entropies = None
            elif out_tokens is None or length == 0:
                token_ids = []
                logprobs, full, entropies = (torch.zeros(0, dtype=torch.float32) for _ in range(3))
            else:
                token_ids = out_tokens[seq, :length].tolist()
                logprobs, full, entropies = (t[seq, :length].clone()
                                             for t in (out_logprobs, out_full, out_entropies))
            group.append(Completion(token_ids, logprobs, "stop" if seq_stopped[seq] else "length",
                                    full, entropies))
        rollout.append(group)
    stats.seconds = time.perf_counter() - started
    rollout.stats = stats
    return rollout
