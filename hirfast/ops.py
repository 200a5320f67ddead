"""Fused lm_head -> log-prob (+ entropy) -> policy loss.

(Placeholder torch twin of `linear_logprobs` with its final signature; the Triton kernels,
`policy_loss` and `PolicyLoss` land with the fused-ops work.)
"""
from __future__ import annotations

import torch

IGNORE_INDEX = -100


def linear_logprobs(hidden, weight, targets, *, temperature=1.0, return_entropy=False, impl="auto"):
    """log_softmax((hidden @ weight.T).float() / temperature)[i, targets[i]], 0 where ignored."""
    chunk = 1024
    out, ent = [], []
    for s in range(0, hidden.shape[0], chunk):
        logits = (hidden[s:s + chunk] @ weight.T).float() / temperature
        logp = torch.log_softmax(logits, dim=-1)
        t = targets[s:s + chunk]
        valid = t != IGNORE_INDEX
        lp = logp.gather(1, t.clamp(min=0).unsqueeze(1)).squeeze(1)
        out.append(torch.where(valid, lp, torch.zeros_like(lp)))
        if return_entropy:
            ent.append(-(logp.exp() * logp).sum(-1))
    lp = torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)
    if return_entropy:
        return lp, (torch.cat(ent) if ent else hidden.new_zeros(0, dtype=torch.float32))
    return lp
