"""Pack (prompt, response) rows into padding-free batches, share prompts, and score responses.

An RL batch mixes responses of 20 to 2,000 tokens; padding them to the longest wastes about half the
compute. Here the rows are laid end to end in one sequence with no pad token, attention is kept
inside each row by varlen kernels (``hirfast.attention``), and the lm_head runs only where a
response token is predicted (``hirfast.ops.linear_logprobs``).

Layout of a ``PackedBatch`` of ``T`` tokens (see its docstring for every field):

- each row contributes ``prompt + response``; ``position_ids`` restart at 0 for every row;
- ``targets[t]`` is the next token of the same row (``IGNORE_INDEX`` at a row's last token), and
  ``loss_mask[t]`` is true exactly where that target is a response token;
- ``cu_seqlens`` (int32) marks the *segments*: one per row, unless prompts are shared.

Shared prompts. HiR rolls out m responses per prompt and replays k of them under a rewritten
prompt that keeps the query, so most rows of a group share a long prefix. With ``share_prompts``
(the default), rows are arranged in a prefix tree of their prompts: a prefix of at least
``min_shared_prefix`` tokens that two or more rows start with becomes one segment, computed once;
each row keeps its own segment holding the rest of its prompt (at least its last prompt token, so
every predicted token has a single target) and its response. A segment's position ids continue
from its prefix, and ``hirfast.attention`` lets it attend to its ancestors' keys; outputs and
gradients are those of computing each row alone (tested to 1e-5 in fp32). Tokens of a shared
segment have ``row_index == -1``.

Micro-batches. ``pack`` cuts the rows into micro-batches of at most ``max_tokens_per_batch`` tokens,
each row whole (and each shared prefix together with its rows, unless the group exceeds the budget,
in which case the group is split into sub-groups that each carry a copy of the prefix). The
micro-batches are balanced by *cost*, ``tokens + attention_cost_weight * attention_pairs``, where
``attention_pairs`` counts the (query, key) pairs causal attention computes, so the quadratic part
is included; ``attention_cost_weight`` is the FLOPs of one pair relative to one token's linear
layers (``ModelFlops.attention_cost_weight``). Balance guarantee: the largest and smallest
micro-batch costs differ by at most the cost of the largest packing unit (a row, or a shared
prefix with its rows), the list-scheduling bound; with many rows per micro-batch that is a few
percent of the mean.
A row longer than the budget is not an error: it becomes a micro-batch of its own (its
``PackedBatch.oversized`` is true), so one long response never stops a training step; it is left out
of the balance guarantee. Rows with an empty response need no log-prob and are not packed.

``score(model, prompts, responses, max_tokens_per_batch=...)`` runs the whole path and returns each
response's per-token log-probs; for gradient accumulation, iterate ``pack(...)`` and call
``score_packed`` per micro-batch instead, so that only one micro-batch's activations are alive.
For the fused loss, ``response_hidden(model, batch)`` gives the lm_head inputs of the response
tokens, which go to ``hirfast.ops.policy_loss`` with ``lm_head_weight(model)``,
``batch.response_targets`` and ``batch.response_cu_seqlens``.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace

import torch

from hirfast.attention import PackedAttentionMeta, packed_attention
from hirfast.ops import IGNORE_INDEX, linear_logprobs

# Sharing a prefix always saves FLOPs (its tokens' layers run once instead of once per row; the
# price is a copy of its keys and values per row, 2*Hkv*Dh numbers per token and layer). The floor
# keeps a few common chat-template tokens from splitting every row into two segments and tying
# unrelated tasks into one packing unit, for a saving of a handful of tokens.
DEFAULT_MIN_SHARED_PREFIX = 32
# Shared prefixes nest at most this deep. HiR needs about three levels (a system prompt, a task's
# query, a group's full prompt); the cap keeps adversarial prompts (each a prefix of the next)
# from recursing without bound, at the price of sharing less for them.
MAX_SHARED_DEPTH = 16
# The attention cost weight ModelFlops.from_config gives for the Qwen2.5-1.5B shape (28 layers,
# d=1536, 12 query / 2 key-value heads of 128, MLP 8960): one (query, key) pair costs 6.56e-5 of
# one token's linear layers, so a 2,000-token row's attention adds ~6.6% to its cost.
DEFAULT_ATTENTION_COST_WEIGHT = 6.56e-5


@dataclass(frozen=True)
class ModelFlops:
    """Matmul FLOPs of one forward pass of a decoder-only transformer (Llama/Qwen/Mistral shape).

    per_token: all linear layers of all decoder layers for one token, ``2 * L * (d*H*Dh
        + 2*d*Hkv*Dh + H*Dh*d + 3*d*ffn)`` (q, k, v, o projections and the gated MLP).
    per_attention_pair: ``Q @ K^T`` and ``P @ V`` for one (query, key) pair, ``4 * L * H * Dh``.
    per_logit_token: the lm_head for one predicted token, ``2 * d * vocab``.

    Norms, RoPE, softmax and activations are left out (under 1% at these shapes). A training step
    (forward + backward) costs 3x the forward: the backward computes two matmuls per forward one.
    """

    per_token: float
    per_attention_pair: float
    per_logit_token: float

    @staticmethod
    def from_config(config) -> "ModelFlops":
        d = config.hidden_size
        heads = config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or d // heads
        layers = config.num_hidden_layers
        layer_params = (d * heads * head_dim + 2 * d * kv_heads * head_dim + heads * head_dim * d
                        + 3 * d * config.intermediate_size)
        return ModelFlops(per_token=2.0 * layers * layer_params,
                          per_attention_pair=4.0 * layers * heads * head_dim,
                          per_logit_token=2.0 * d * config.vocab_size)

    @property
    def attention_cost_weight(self) -> float:
        return self.per_attention_pair / self.per_token

    def forward(self, tokens: int, attention_pairs: int, logit_tokens: int) -> float:
        return (self.per_token * tokens + self.per_attention_pair * attention_pairs
                + self.per_logit_token * logit_tokens)


def causal_attention_pairs(query_len: int, prefix_len: int = 0) -> int:
    """(query, key) pairs causal attention computes for a segment after `prefix_len` prefix keys."""
    return query_len * prefix_len + query_len * (query_len + 1) // 2


@dataclass(frozen=True)
class PackedBatch:
    """One padding-free micro-batch of ``T`` tokens in ``S`` segments, holding whole rows.

    input_ids: int64 [T], the rows' tokens end to end (shared prefixes once).
    position_ids: int64 [T], restarting at 0 for each row (a suffix segment continues from its
        shared prefix's length, so every token keeps the position it has in its own row).
    cu_seqlens: int32 [S+1], segment boundaries; segments are the rows when nothing is shared.
    max_seqlen: the longest segment.
    targets: int64 [T], the next token of the same row, ``IGNORE_INDEX`` (-100) at each row's end.
    loss_mask: bool [T], true where the target is a response token.
    row_index: int64 [T], the input row each token belongs to; -1 on shared-prefix tokens.
    attention: what the attention backends need (key segments, ``kv_index`` for shared prefixes).
    rows: the input rows packed here, in layout order.
    response_lengths: tokens of each of those rows' responses.
    response_positions: int64 [N], ``loss_mask.nonzero()`` in row order: row ``rows[i]``'s response
        log-probs are read at ``response_positions[o_i : o_i + response_lengths[i]]``.
    response_targets: int64 [N], ``targets[response_positions]``, the response tokens.
    response_cu_seqlens: int32 [B+1], row ``rows[i]``'s response tokens are
        ``response_targets[response_cu_seqlens[i]:response_cu_seqlens[i+1]]`` (the ``cu_seqlens``
        that ``hirfast.ops.policy_loss`` takes for its per-sequence means).
    num_row_tokens: the tokens these rows hold when each is computed alone (sum of prompt + response
        lengths); ``num_row_tokens - num_tokens`` is what sharing saved.
    attention_pairs: (query, key) pairs causal attention computes here.
    cost: ``num_tokens + attention_cost_weight * attention_pairs``, what ``pack`` balances.
    oversized: a single row longer than the token budget, packed alone.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    max_seqlen: int
    targets: torch.Tensor
    loss_mask: torch.Tensor
    row_index: torch.Tensor
    attention: PackedAttentionMeta
    rows: tuple
    response_lengths: tuple
    response_positions: torch.Tensor
    response_targets: torch.Tensor
    response_cu_seqlens: torch.Tensor
    num_row_tokens: int
    attention_pairs: int
    cost: float
    oversized: bool = False

    @property
    def num_tokens(self) -> int:
        return self.input_ids.shape[0]

    @property
    def num_segments(self) -> int:
        return self.cu_seqlens.shape[0] - 1

    def to(self, device) -> "PackedBatch":
        """The same batch with its tensors on `device` (host lengths stay on the host)."""
        move = dict(non_blocking=True)
        return replace(
            self, input_ids=self.input_ids.to(device, **move),
            position_ids=self.position_ids.to(device, **move),
            cu_seqlens=self.cu_seqlens.to(device, **move), targets=self.targets.to(device, **move),
            loss_mask=self.loss_mask.to(device, **move),
            row_index=self.row_index.to(device, **move),
            attention=self.attention.to(device),
            response_positions=self.response_positions.to(device, **move),
            response_targets=self.response_targets.to(device, **move),
            response_cu_seqlens=self.response_cu_seqlens.to(device, **move))

    def model_inputs(self) -> dict:
        """Keyword arguments for a Hugging Face model (or its ``base_model``) run under
        ``hirfast.attention.packed_attention``: batch size 1, no mask, no cache.

        Without shared prefixes it also carries transformers' own varlen arguments
        (``cu_seq_lens_q/k``, ``max_length_q/k``), so HF's ``flash_attention_2`` reads it too.
        """
        inputs = {"input_ids": self.input_ids.unsqueeze(0),
                  "position_ids": self.position_ids.unsqueeze(0),
                  "hirfast_packing": self.attention, "use_cache": False}
        if self.attention.kv_index is None:
            inputs.update(cu_seq_lens_q=self.attention.cu_seqlens_q,
                          cu_seq_lens_k=self.attention.cu_seqlens_k,
                          max_length_q=self.attention.max_seqlen_q,
                          max_length_k=self.attention.max_seqlen_k)
        return inputs


# --- input checks -----------------------------------------------------------------------------

def _token_list(value, row: int, field: str) -> list:
    if isinstance(value, torch.Tensor):
        if value.dim() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise ValueError(f"row {row}: {field} must be a 1-D integer tensor of token ids, got "
                             f"shape {tuple(value.shape)} and dtype {value.dtype}")
        tokens = value.tolist()
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"row {row}: {field} must be a sequence of token ids, got "
                         f"{type(value).__name__}")
    else:
        tokens = []
        for position, token in enumerate(value):
            if isinstance(token, bool):
                raise ValueError(f"row {row}: {field}[{position}] is a bool, not a token id")
            try:
                tokens.append(operator.index(token))
            except TypeError:
                raise ValueError(f"row {row}: {field}[{position}] = {token!r} is not an integer "
                                 "token id") from None
    if tokens and min(tokens) < 0:
        position = next(i for i, t in enumerate(tokens) if t < 0)
        raise ValueError(f"row {row}: {field}[{position}] = {tokens[position]} is negative")
    return tokens


def _check_rows(prompts, responses):
    prompts, responses = list(prompts), list(responses)
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses; give one "
                         "response per prompt (repeat a prompt for each of its responses)")
    prompts = [_token_list(p, row, "prompt") for row, p in enumerate(prompts)]
    responses = [_token_list(r, row, "response") for row, r in enumerate(responses)]
    for row, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"row {row}: prompt is empty; the first response token needs at "
                             "least one prompt token (e.g. BOS) to be predicted from")
    return prompts, responses


# --- the prefix tree of prompts ---------------------------------------------------------------
# A packing item is a row (an int) or a _Shared segment. An item hangs under a parent that ends at
# `parent_end` (0 at the top): a row's own segment is full_row[parent_end:], a _Shared segment is
# prompts[rep_row][parent_end:end]. Every ancestor chain covers [0, parent_end) of the row, so the
# keys an item attends to before its own are exactly parent_end many.

@dataclass
class _Shared:
    rep_row: int      # any row under this segment: its prompt holds the segment's tokens
    end: int
    children: list    # items (ints or _Shared), two or more


@dataclass
class _Radix:
    end: int
    children: list    # items of the raw radix tree (ints or _Radix)


class _Rows:
    """Prompts, responses and the cost weight shared by the tree and layout helpers."""

    def __init__(self, prompts, responses, attention_cost_weight):
        self.prompts = prompts
        self.responses = responses
        self.weight = attention_cost_weight

    def row_length(self, row):
        return len(self.prompts[row]) + len(self.responses[row])

    def first_row(self, item):
        while isinstance(item, _Shared):
            item = item.children[0]
        return item

    def tokens(self, item, parent_end):
        if isinstance(item, int):
            return self.row_length(item) - parent_end
        return item.end - parent_end + sum(self.tokens(c, item.end) for c in item.children)

    def pairs(self, item, parent_end):
        if isinstance(item, int):
            return causal_attention_pairs(self.row_length(item) - parent_end, parent_end)
        own = causal_attention_pairs(item.end - parent_end, parent_end)
        return own + sum(self.pairs(c, item.end) for c in item.children)

    def cost(self, item):
        return self.tokens(item, 0) + self.weight * self.pairs(item, 0)

    def forest(self, rows, min_shared_prefix):
        """Top-level items: rows whose prompts share a prefix of >= min_shared_prefix tokens
        (before their last prompt token) are grouped under _Shared segments, recursively."""
        # Only prompt[:-1] can be shared: each row keeps its last prompt token, whose hidden state
        # predicts that row's own first response token.
        order = sorted(rows, key=lambda r: self.prompts[r][:-1])
        lcp = []
        for a, b in zip(order, order[1:]):
            pa, pb = self.prompts[a], self.prompts[b]
            limit = min(len(pa), len(pb)) - 1
            n = 0
            while n < limit and pa[n] == pb[n]:
                n += 1
            lcp.append(n)

        def radix(lo, hi, depth, level):
            # Items below a node of common length `depth` over order[lo:hi]: split into runs whose
            # adjacent common prefixes are longer than `depth`. Below MAX_SHARED_DEPTH nested
            # nodes the rows hang as they are (shared no further), which bounds every recursion.
            items, start = [], lo
            for i in range(lo, hi):
                if i == hi - 1 or lcp[i] <= depth:
                    if i == start or level == MAX_SHARED_DEPTH:
                        items.extend(order[start:i + 1])
                    else:
                        end = min(lcp[start:i])
                        items.append(_Radix(end, radix(start, i + 1, end, level + 1)))
                    start = i + 1
            return items

        def prune(item, parent_end):
            if isinstance(item, int):
                return [item]
            if item.end - parent_end >= min_shared_prefix:
                children = [x for c in item.children for x in prune(c, item.end)]
                return [_Shared(self.first_row(children[0]), item.end, children)]
            return [x for c in item.children for x in prune(c, parent_end)]

        return [x for item in radix(0, len(order), 0, 0) for x in prune(item, 0)]

    def fit(self, item, budget):
        """Split a top-level item whose tokens exceed `budget` into top-level items that fit:
        balanced sub-groups of its children, each carrying a copy of the shared prefix. A lone
        row stays as it is (an oversized one becomes its own micro-batch)."""
        if isinstance(item, int) or self.tokens(item, 0) <= budget:
            return [item]
        room = budget - item.end
        sizes = [self.tokens(c, item.end) for c in item.children]
        lifted = [c for c, size in zip(item.children, sizes) if size > room]
        kept = [i for i, size in enumerate(sizes) if size <= room]
        out = []
        if kept:
            costs = [sizes[i] + self.weight * self.pairs(item.children[i], item.end) for i in kept]
            for members in _balanced_bins(costs, [sizes[i] for i in kept], room):
                children = [item.children[kept[i]] for i in members]
                if len(children) == 1:
                    lifted.append(children[0])
                else:
                    out.append(_Shared(self.first_row(children[0]), item.end, children))
        # A lifted child takes the prefix into its own first segment (its parent_end becomes 0).
        for child in lifted:
            out.extend(self.fit(child, budget))
        return out


def _balanced_bins(costs, sizes, budget):
    """Assign items to the fewest bins (<= budget tokens each) for which longest-processing-time
    list scheduling keeps max cost - min cost <= the largest item cost; returns lists of indices."""
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], -sizes[i], i))
    largest = max(costs)
    bins = max(1, math.ceil(sum(sizes) / budget))
    while True:
        load, used = [0.0] * bins, [0] * bins
        members = [[] for _ in range(bins)]
        placed = True
        for i in order:
            open_bins = [b for b in range(bins) if used[b] + sizes[i] <= budget]
            if not open_bins:
                placed = False
                break
            b = min(open_bins, key=lambda j: (load[j], j))
            load[b] += costs[i]
            used[b] += sizes[i]
            members[b].append(i)
        # bins == len(costs) always succeeds: one item each, spread <= largest cost.
        if placed and max(load) - min(load) <= largest:
            return members
        bins += 1


# --- layout -----------------------------------------------------------------------------------

def _layout(rows_info: _Rows, items, oversized=False) -> PackedBatch:
    prompts, responses = rows_info.prompts, rows_info.responses
    input_ids, position_ids, targets, row_index = [], [], [], []
    seg_lens, kv_lens, kv_index = [0], [], []
    rows, response_lengths, response_positions = [], [], []
    has_prefix = False
    pairs = 0
    num_row_tokens = 0

    def emit(tokens, next_tokens, start_position, row, ancestors):
        nonlocal has_prefix, pairs
        flat_start = len(input_ids)
        input_ids.extend(tokens)
        targets.extend(next_tokens)
        position_ids.extend(range(start_position, start_position + len(tokens)))
        row_index.extend([row] * len(tokens))
        seg_lens.append(len(tokens))
        for lo, hi in ancestors:
            kv_index.extend(range(lo, hi))
        kv_index.extend(range(flat_start, flat_start + len(tokens)))
        kv_lens.append(start_position + len(tokens))
        has_prefix = has_prefix or start_position > 0
        pairs += causal_attention_pairs(len(tokens), start_position)
        return flat_start

    def walk(item, parent_end, ancestors):
        nonlocal num_row_tokens
        if isinstance(item, int):
            prompt, response = prompts[item], responses[item]
            full = prompt + response
            flat_start = emit(full[parent_end:], full[parent_end + 1:] + [IGNORE_INDEX],
                              parent_end, item, ancestors)
            # Row position k predicts full[k + 1]; response tokens are predicted from
            # k = len(prompt) - 1 to len(full) - 2, all inside this row's own segment.
            first = flat_start + len(prompt) - 1 - parent_end
            rows.append(item)
            response_lengths.append(len(response))
            response_positions.extend(range(first, first + len(response)))
            num_row_tokens += len(full)
            return
        source = prompts[item.rep_row]
        flat_start = emit(source[parent_end:item.end], source[parent_end + 1:item.end + 1],
                          parent_end, -1, ancestors)
        inner = ancestors + [(flat_start, flat_start + item.end - parent_end)]
        for child in item.children:
            walk(child, item.end, inner)

    for item in items:
        walk(item, 0, [])

    total = len(input_ids)
    cu_seqlens = torch.tensor(seg_lens, dtype=torch.int64).cumsum(0).to(torch.int32)
    max_seqlen = max(seg_lens)
    seqlens_q = tuple(seg_lens[1:])
    if has_prefix:
        cu_seqlens_k = torch.tensor([0] + kv_lens, dtype=torch.int64).cumsum(0).to(torch.int32)
        meta = PackedAttentionMeta(cu_seqlens, cu_seqlens_k, max_seqlen, max(kv_lens), seqlens_q,
                                   tuple(kv_lens), torch.tensor(kv_index, dtype=torch.int64))
    else:
        meta = PackedAttentionMeta(cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, seqlens_q,
                                   seqlens_q, None)
    target_tensor = torch.tensor(targets, dtype=torch.int64)
    positions = torch.tensor(response_positions, dtype=torch.int64)
    loss_mask = torch.zeros(total, dtype=torch.bool)
    loss_mask[positions] = True
    return PackedBatch(
        input_ids=torch.tensor(input_ids, dtype=torch.int64),
        position_ids=torch.tensor(position_ids, dtype=torch.int64), cu_seqlens=cu_seqlens,
        max_seqlen=max_seqlen, targets=target_tensor, loss_mask=loss_mask,
        row_index=torch.tensor(row_index, dtype=torch.int64), attention=meta, rows=tuple(rows),
        response_lengths=tuple(response_lengths), response_positions=positions,
        response_targets=target_tensor[positions],
        response_cu_seqlens=torch.tensor([0] + response_lengths).cumsum(0).to(torch.int32),
        num_row_tokens=num_row_tokens,
        attention_pairs=pairs, cost=total + rows_info.weight * pairs, oversized=oversized)


def pack(prompts, responses, *, max_tokens_per_batch: int, share_prompts: bool = True,
         min_shared_prefix: int = DEFAULT_MIN_SHARED_PREFIX,
         attention_cost_weight: float = DEFAULT_ATTENTION_COST_WEIGHT) -> list[PackedBatch]:
    """Pack rows into balanced padding-free micro-batches of at most `max_tokens_per_batch` tokens.

    prompts, responses: one token-id sequence (list, tuple or 1-D integer tensor) each per row.
        Every prompt needs at least one token. Rows with an empty response are left out.
    max_tokens_per_batch: the token budget of a micro-batch (counting a shared prefix once). A row
        longer than the budget is packed alone, as an ``oversized`` micro-batch.
    share_prompts: compute each prefix of >= `min_shared_prefix` tokens that several rows share
        once (see the module docstring); False packs every row whole in its own segment.
    attention_cost_weight: FLOPs of one attention (query, key) pair relative to one token's linear
        layers, for balancing (``ModelFlops.from_config(config).attention_cost_weight``).

    Returns the micro-batches (on the CPU; ``PackedBatch.to(device)`` moves one), costliest first.
    Every row with a response is in exactly one of them.
    """
    if not isinstance(max_tokens_per_batch, int) or max_tokens_per_batch < 1:
        raise ValueError(
            f"max_tokens_per_batch must be a positive int, got {max_tokens_per_batch!r}")
    if not isinstance(min_shared_prefix, int) or min_shared_prefix < 1:
        raise ValueError(f"min_shared_prefix must be a positive int, got {min_shared_prefix!r}")
    if not attention_cost_weight >= 0:
        raise ValueError(f"attention_cost_weight must be >= 0, got {attention_cost_weight!r}")
    prompts, responses = _check_rows(prompts, responses)
    return _pack_checked(prompts, responses, max_tokens_per_batch, share_prompts,
                         min_shared_prefix, attention_cost_weight)


def _pack_checked(prompts, responses, max_tokens_per_batch, share_prompts, min_shared_prefix,
                  attention_cost_weight):
    info = _Rows(prompts, responses, attention_cost_weight)
    rows = [r for r in range(len(prompts)) if responses[r]]
    if not rows:
        return []
    items = info.forest(rows, min_shared_prefix) if share_prompts else rows
    units = [u for item in items for u in info.fit(item, max_tokens_per_batch)]
    sizes = [info.tokens(u, 0) for u in units]
    batches = [_layout(info, [u], oversized=True)
               for u, size in zip(units, sizes) if size > max_tokens_per_batch]
    fitting = [i for i, size in enumerate(sizes) if size <= max_tokens_per_batch]
    if fitting:
        costs = [info.cost(units[i]) for i in fitting]
        bins = _balanced_bins(costs, [sizes[i] for i in fitting], max_tokens_per_batch)
        batches += [_layout(info, [units[fitting[i]] for i in members]) for members in bins]
    return sorted(batches, key=lambda b: -b.cost)


# --- scoring ----------------------------------------------------------------------------------

def lm_head_weight(model) -> torch.Tensor:
    """The lm_head weight ``[V, d]`` of a Hugging Face causal LM, checked to be all its logits are
    (no bias, no softcapping or scaling), as ``hirfast.ops`` computes them."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings (lm_head); packed "
                         "scoring needs a causal LM such as LlamaForCausalLM")
    if getattr(head, "bias", None) is not None:
        raise ValueError(f"{type(model).__name__}'s lm_head has a bias, which "
                         "hirfast.ops.linear_logprobs does not take")
    for attr in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
        if getattr(model.config, attr, None) not in (None, 1, 1.0):
            raise ValueError(f"{type(model).__name__} transforms its logits ({attr}="
                             f"{getattr(model.config, attr)}), which packed scoring does not "
                             "reproduce")
    return head.weight


def response_hidden(model, batch: PackedBatch, *, backend: str = "auto") -> torch.Tensor:
    """The model's final hidden states ``[N, d]`` at ``batch.response_positions``: the inputs of
    the lm_head for every response token of the micro-batch, row by row.

    With ``lm_head_weight(model)``, ``batch.response_targets`` and ``batch.response_cu_seqlens``
    this is what ``hirfast.ops.policy_loss`` takes, for a fused loss that never forms the log-probs
    separately. ``batch`` must be on the model's device (``batch.to(device)``); the model's
    attention is switched to ``hirfast.attention``'s `backend` for the call only.
    """
    device = model.get_input_embeddings().weight.device
    if batch.input_ids.device != device:
        raise ValueError(f"the packed batch is on {batch.input_ids.device} but the model on "
                         f"{device}; call batch.to({str(device)!r}) first")
    with packed_attention(model, backend):
        hidden = model.base_model(**batch.model_inputs()).last_hidden_state[0]  # (T, d)
    return hidden.index_select(0, batch.response_positions)  # (N, d), only predicted tokens


def score_packed(model, batch: PackedBatch, *, temperature: float = 1.0,
                 return_entropy: bool = False, backend: str = "auto"):
    """Per-token log-probs of the responses of one packed micro-batch.

    model: a Hugging Face causal LM (Llama, Qwen2, Qwen3, Mistral families), unmodified; its
        attention is switched to ``hirfast.attention`` for the call only.
    batch: from ``pack``; moved to the model's device if it is elsewhere.
    Returns a list of fp32 tensors, ``[response_lengths[i]]`` for row ``batch.rows[i]``:
    ``log_softmax(logits / temperature)`` at each response token. With grad enabled they are
    differentiable with respect to the model's parameters. With ``return_entropy``, also a list of
    the entropies of the same distributions, as a second element.
    """
    device = model.get_input_embeddings().weight.device
    if batch.input_ids.device != device:
        batch = batch.to(device)
    weight = lm_head_weight(model)
    hidden = response_hidden(model, batch, backend=backend)
    result = linear_logprobs(hidden, weight, batch.response_targets, temperature=temperature,
                             return_entropy=return_entropy)
    if return_entropy:
        logprobs, entropy = result
        return (list(logprobs.split(batch.response_lengths)),
                list(entropy.split(batch.response_lengths)))
    return list(result.split(batch.response_lengths))


def score(model, prompts, responses, *, max_tokens_per_batch: int, share_prompts: bool = True,
          min_shared_prefix: int = DEFAULT_MIN_SHARED_PREFIX, temperature: float = 1.0,
          return_entropy: bool = False, backend: str = "auto"):
    """Per-token log-probs of each response given its prompt, through packed micro-batches.

    model: a Hugging Face causal LM (Llama, Qwen2, Qwen3, Mistral families), unmodified.
    prompts, responses: one token-id sequence each per row (lists or 1-D integer tensors); rows
        sharing a prompt (a group's m responses) or a prompt prefix (its replays) are detected and
        their shared prefix computed once when `share_prompts` (see ``pack``).
    max_tokens_per_batch: token budget of each forward micro-batch (see ``pack``).
    temperature: the log-probs are of ``softmax(logits / temperature)``, as sampled.
    backend: attention backend name or "auto" (see ``hirfast.attention``).

    Returns ``list[Tensor]``, in input order: fp32 ``[len(responses[i])]`` on the model's device,
    entry ``j`` the log-prob of ``responses[i][j]`` given ``prompts[i] + responses[i][:j]`` (an
    empty tensor for an empty response). With ``return_entropy``, a tuple (log-probs, entropies)
    of such lists. Differentiable when called with grad enabled; note that every micro-batch's
    activations then stay alive until backward: for gradient accumulation use ``pack`` +
    ``score_packed``.
    """
    prompts, responses = _check_rows(prompts, responses)
    vocab = model.get_input_embeddings().num_embeddings
    for field, seqs in (("prompt", prompts), ("response", responses)):
        for row, tokens in enumerate(seqs):
            if tokens and max(tokens) >= vocab:
                position = next(i for i, t in enumerate(tokens) if t >= vocab)
                raise ValueError(f"row {row}: {field}[{position}] = {tokens[position]} is outside "
                                 f"the model's vocabulary of {vocab} tokens")
    weight = ModelFlops.from_config(model.config).attention_cost_weight
    batches = pack(prompts, responses, max_tokens_per_batch=max_tokens_per_batch,
                   share_prompts=share_prompts, min_shared_prefix=min_shared_prefix,
                   attention_cost_weight=weight)
    device = model.get_input_embeddings().weight.device
    empty = torch.zeros(0, dtype=torch.float32, device=device)
    logprobs = [empty] * len(prompts)
    entropies = [empty] * len(prompts)
    for batch in batches:
        result = score_packed(model, batch, temperature=temperature,
                              return_entropy=return_entropy, backend=backend)
        batch_logprobs, batch_entropies = result if return_entropy else (result, None)
        for i, row in enumerate(batch.rows):
            logprobs[row] = batch_logprobs[i]
            if return_entropy:
                entropies[row] = batch_entropies[i]
    return (logprobs, entropies) if return_entropy else logprobs
