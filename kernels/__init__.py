"""Triton kernels of hirfast, installed as ``hirfast.kernels`` (one op per file).

Only torch and triton may be imported here. Each op has a pure-torch twin in ``hirfast.ops``
(``impl="torch"``), which is the test reference and the CPU path.
"""
