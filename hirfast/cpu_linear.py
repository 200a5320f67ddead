"""fp32 linear layers through oneDNN with pre-packed weights, for generation on the CPU.

`packed_linears(model, rows)` is a context manager: inside it, every fp32 `torch.nn.Linear` of a
model on the CPU runs `torch.ops.mkldnn._linear_pointwise` on a copy of its weight that oneDNN
has reordered once into its own blocked layout (`torch.ops.mkldnn._reorder_linear_weight`, the
ops torch.compile's CPU freezing pass emits), instead of `F.linear`'s sgemm on the plain weight;
on exit the modules are as before. `rows` is the expected number of input rows (oneDNN picks the
layout for it; other row counts still work).

Why: a decode step of a small model is its matmuls (bench/RESULTS.md, "`hirfast eval`
generation vs HF `generate`"), at 1-64 rows per step, where the layout of the weight decides
how fast they run. oneDNN chooses its kernel from the CPU's instruction set (AVX-512 on the
AMD EPYC this was measured on) where the sgemm `F.linear` calls may not.

The float results are not bit for bit `F.linear`'s (another kernel sums in another order), so
this is used only where the caller keeps no numbers but the tokens: `hirfast eval`'s generation,
not training rollouts (their log-probs are the trainer's log pi_old) nor the demo. Greedy tokens
can then differ from `F.linear`'s only where the two likeliest logits are within rounding of
each other; bench/test_real_generate_bench.py checks token identity with HF `generate` on its
prompts. The packed copies take as much memory as the weights (one more copy, dropped on exit).
"""
from __future__ import annotations

import contextlib

import torch


def available() -> bool:
    """This torch build has the oneDNN linear ops."""
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise"))


def _packable(module: torch.nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return (type(module) is torch.nn.Linear and weight is not None and weight.device.type == "cpu"
            and weight.dtype == torch.float32 and weight.dim() == 2)


def _packed_forward(packed: torch.Tensor, bias: torch.Tensor | None, in_features: int,
                    out_features: int):
    linear = torch.ops.mkldnn._linear_pointwise

    def forward(x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = linear(x.reshape(-1, in_features), packed, bias, "none", [], "")
        return y.reshape(*lead, out_features)

    return forward


@contextlib.contextmanager
def packed_linears(model: torch.nn.Module, rows: int):
    """Inside: the model's fp32 CPU `nn.Linear` layers run on oneDNN-packed weights (inference
    only: no gradients flow through them). Yields how many layers were switched (0 when the ops
    are missing or nothing is packable, and then nothing changes)."""
    modules = [m for m in model.modules() if _packable(m)] if available() else []
    switched = []
    try:
        with torch.no_grad():
            for module in modules:
                packed = torch.ops.mkldnn._reorder_linear_weight(module.weight.detach(), max(1, rows))
                bias = None if module.bias is None else module.bias.detach()
                module.forward = _packed_forward(packed, bias, module.in_features, module.out_features)
                switched.append(module)
        yield len(switched)
    finally:
        for module in switched:
            del module.forward  # the class's forward again
