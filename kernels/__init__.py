"""Triton kernels of hirfast, installed as ``hirfast.kernels`` (one op per file).

Only torch and triton may be imported here. Each op has a pure-torch twin in ``hirfast.ops``
(``impl="torch"``), which is the test reference and the CPU path.

This folder sits at the top of a checkout, so a Python started there (``python -m pytest``,
``python -m hirfast``, ``python -c ...``) finds it as a top-level package named ``kernels``: the
name of Hugging Face's hub-kernels distribution, which transformers (>= 5.25) imports. Imported
under any name but ``hirfast.kernels``, this file steps aside: it loads the installed ``kernels``
distribution in its place, or raises ModuleNotFoundError as if the folder were not there. hirfast's
kernels are reached only as ``hirfast.kernels``.
"""
if __name__ != "hirfast.kernels":

    def _step_aside(name: str, init_file: str) -> None:
        import importlib.machinery
        import importlib.util
        import os
        import sys

        checkout = os.path.realpath(os.path.dirname(os.path.dirname(init_file)))

        def elsewhere(entry: str) -> bool:
            return os.path.realpath(entry or os.curdir) != checkout

        path = [entry for entry in sys.path if isinstance(entry, str) and elsewhere(entry)]
        spec = None
        for finder in sys.meta_path:
            if finder is importlib.machinery.PathFinder:
                spec = finder.find_spec(name, path)
            elif hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, None)
            if spec is not None and spec.origin != init_file:
                break
            spec = None
        if spec is None:
            raise ModuleNotFoundError(
                f"No module named {name!r} (the folder {checkout}/{name} holds hirfast's Triton "
                "kernels: import them as hirfast.kernels)", name=name)
        module = importlib.util.module_from_spec(spec)
        # The import statement returns whatever sys.modules holds under the name once this file
        # has run: the distribution, not this folder.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise

    _step_aside(__name__, __file__)
    del _step_aside
