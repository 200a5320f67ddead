"""hirfast: a fast trainer for Hindsight instruction Replay (HiR), and its parts.

Submodules are imported on demand so that `import hirfast.verify` (the constraint checker) stays
light and never imports torch:

- ``hirfast.verify``   batch constraint checking with the C++ engine (``hirfast._C``)
- ``hirfast.ops``      fused lm_head -> log-prob -> policy loss (Triton kernels + torch twin)
- ``hirfast.packing``  varlen packing of rows into padding-free batches
- ``hirfast.rollout``  generation with one prefill per prompt and recorded log-probs
- ``hirfast.trainer``  the HiR training loop
- ``hirfast.rewards``  reward sources behind one interface: the engine, dataset functions in a
  sandbox (``rewards.sandbox``) and an LLM judge (``rewards.judge``), for HIR-16K type4 rows
"""

__version__ = "0.1.0"
