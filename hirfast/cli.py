"""The `hirfast` command line. Each subcommand lives in its own module, imported only when run,
so that `hirfast verify` never imports torch.

A subcommand module defines ``add_arguments(parser)`` and ``main(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "verify": ("hirfast.verify_cli", "check responses against their constraints (IFEval/IFBench)"),
    "eval": ("hirfast.evaluate", "generate with a model on IFEval, IFBench or MulDimIF and score it"),
    "train": ("hirfast.trainer", "train a causal LM with Hindsight instruction Replay"),
    "demo": ("hirfast.demo", "train a tiny model with and without replay and compare (no download)"),
    "hir2023-compare": ("hirfast.hir2023_compare", "HIR 2023 vs HiR vs REINFORCE++ on the demo's world "
                        "(held-out ILA, shuffled control)"),
    "plot": ("hirfast.plot", "draw a run's metrics.jsonl curves to PNG"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the command asked for: importing every command module would pull
    # torch into `hirfast verify`.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module, help_text = COMMANDS[name]
        parser = argparse.ArgumentParser(prog=f"hirfast {name}", description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        return int(mod.main(args) or 0)
    parser = argparse.ArgumentParser(prog="hirfast", description="hirfast: Hindsight instruction Replay, fast.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text)
    parser.parse_args(argv)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
