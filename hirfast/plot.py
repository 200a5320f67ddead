"""``hirfast plot RUN_DIR``: draw a run's ``metrics.jsonl`` to a PNG (matplotlib, no display)."""
from __future__ import annotations

import json
import os
import sys

__all__ = ["read_metrics", "plot_run", "add_arguments", "main"]

# (panel title, [(metric key, label), ...]) drawn against the cumulative rollout count.
PANELS = [
    ("instruction-level accuracy", [("ila", "train ILA"), ("eval_ila", "held-out ILA")]),
    ("constraint-level accuracy", [("cla", "train CLA"), ("eval_cla", "held-out CLA")]),
    ("replay", [("replay_ratio", "replays / originals"), ("zero_reward_groups", "all-zero groups")]),
    ("lambda_s", [("lambda", "lambda_s")]),
    ("loss and gradient", [("loss", "loss"), ("grad_norm", "grad norm")]),
    ("policy", [("entropy", "entropy"), ("kl", "KL"), ("clip_fraction", "clip fraction")]),
    ("response length (tokens)", [("response_length", "mean")]),
    ("throughput (tokens/s)", [("tokens_per_s_rollout", "rollout"), ("tokens_per_s_verify", "verify"),
                               ("tokens_per_s_replay", "replay"), ("tokens_per_s_train", "train")]),
]
LOG_SCALE = {"throughput (tokens/s)"}


def read_metrics(path: str) -> list[dict]:
    """The rows of a ``metrics.jsonl`` (a run directory or the file itself)."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
    if not rows:
        raise ValueError(f"{path}: no metrics yet")
    return rows


def _figure(n_panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if n_panels > 1 else 1
    rows = (n_panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.2 * rows), squeeze=False)
    return plt, fig, [ax for row in axes for ax in row]


def plot_run(run_dir: str, out: str | None = None) -> str:
    """Draw every panel that has data; return the PNG's path (default ``RUN_DIR/metrics.png``)."""
    rows = read_metrics(run_dir)
    panels = [(t, [(k, lab) for k, lab in series if any(r.get(k) is not None for r in rows)])
              for t, series in PANELS]
    panels = [(t, s) for t, s in panels if s]
    plt, fig, axes = _figure(len(panels))
    for ax, (title, series) in zip(axes, panels):
        for key, label in series:
            pts = [(r["rollouts"], r[key]) for r in rows if r.get(key) is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None,
                    markersize=3, label=label)
        ax.set_title(title)
        ax.set_xlabel("rollouts")
        if title in LOG_SCALE:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    if out is None:
        out = os.path.join(run_dir if os.path.isdir(run_dir) else os.path.dirname(run_dir) or ".",
                           "metrics.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run's output directory "
                        "(or its metrics.jsonl)")
    parser.add_argument("--out", metavar="FILE", help="PNG to write (default RUN_DIR/metrics.png)")


def main(args) -> int:
    try:
        path = plot_run(args.run_dir, args.out)
    except (OSError, ValueError) as e:
        print(f"hirfast plot: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
