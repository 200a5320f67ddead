"""hirfast: a fast trainer for Hindsight instruction Replay (HiR), and its parts.

Submodules are imported on demand so that `import hirfast.verify` (the constraint checker) stays
light and never imports torch:

- ``hirfast.verify``   batch constraint checking with the C++ engine (``hirfast._C``)
- ``hirfast.ops``      fused lm_head -> log-prob -> policy loss (Triton kernels + torch twin)
- ``hirfast.packing``  varlen packing of rows into padding-free batches
- ``hirfast.rollout``  generation with one prefill per prompt and recorded log-probs
- ``hirfast.trainer``  the HiR training loop
"""

__version__ = "0.1.0"
