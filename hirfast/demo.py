"""``hirfast demo``: hindsight replay against plain REINFORCE++ on a tiny model, no download.

1. A tiny world (``hirfast.demo_model``): synthetic tasks of 3-5 IFEval constraints over a small
   vocabulary, a word-level tokenizer and a tiny Llama built on the fly.
2. One supervised warm start on answers that follow each constraint only now and then, so that
   meeting all of a task's constraints is rare at the start.
3. For every seed, two RL runs from that warm start with identical settings (tasks, order,
   sampling seeds, hyperparameters, number of rollouts) except ``replay``: HiR, and REINFORCE++
   without replay.
4. ILA (all constraints met) and CLA (share met) on held-out tasks (instructions never trained on)
   every few steps, sampled at temperature 1 with the same sampling seeds for both arms; a table,
   ``summary.json`` and ``curves.png``. The verdict says what happened, whichever arm wins.

The settings (``FULL``) were chosen on this tiny world, identically for both arms; replay's edge
depends on them (see the README's train section for what other settings gave).

Runs go to worker processes (one per core by default, one thread each: a tiny model is
overhead-bound, and one thread per process stays fast on a shared machine).
"""
from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass

__all__ = ["DemoSettings", "FULL", "QUICK", "run_demo", "add_arguments", "main"]


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo does; ``FULL`` and ``QUICK`` are the two presets."""

    train_tasks: int = 3000
    heldout_tasks: int = 256
    warm_tasks: int = 4000
    follow_prob: float = 0.3       # warm-start answers meet each listed constraint this often
    warm_steps: int = 500
    warm_batch: int = 32
    warm_lr: float = 3e-3
    hidden_size: int = 64
    layers: int = 2
    rl_steps: int = 120
    tasks_per_step: int = 8
    rollouts_per_task: int = 6
    max_new_tokens: int = 96       # warm answers take ~45 tokens; room to grow, rarely truncated
    lr: float = 3e-4
    kl_loss_coef: float = 0.1      # k3 KL to the warm start, in the loss, for both arms
    eval_every: int = 20
    eval_samples: int = 2          # sampled at temperature 1: the policy itself, less jumpy than
    eval_temperature: float = 1.0  # greedy decoding of a 0.15M-parameter model


FULL = DemoSettings()
QUICK = DemoSettings(train_tasks=200, heldout_tasks=12, warm_tasks=200, warm_steps=30,
                     warm_batch=8, rl_steps=4, tasks_per_step=2, rollouts_per_task=3,
                     max_new_tokens=24, eval_every=2, eval_samples=1, hidden_size=32)

ARMS = ("hir", "baseline")
ARM_NAMES = {"hir": "HiR (replay)", "baseline": "REINFORCE++ (no replay)"}


def _world(settings: DemoSettings, ids):
    """Training, held-out and warm-start tasks (held-out instructions never appear in training)."""
    from .demo_model import demo_tasks

    train = demo_tasks(settings.train_tasks, seed=0, available_ids=ids, key_prefix="train")
    seen = {t.instruction() for t in train}
    heldout = [t for t in demo_tasks(settings.heldout_tasks * 3, seed=10_000, available_ids=ids,
                                     key_prefix="heldout") if t.instruction() not in seen]
    warm = demo_tasks(settings.warm_tasks, seed=20_000, available_ids=ids, key_prefix="warm")
    return train, heldout[:settings.heldout_tasks], warm


def _warm_start(settings: DemoSettings, out: str, train, heldout, warm) -> dict:
    """Build the tokenizer and the tiny model, train them on generated answers, save both."""
    import torch

    from .demo_model import build_model, build_tokenizer, sample_response, warm_start

    rng = random.Random(1)
    pairs = [(t.instruction(), sample_response(rng, t, settings.follow_prob)) for t in warm]
    # The vocabulary: every piece of the answers and of the chat-wrapped instructions.
    tokenizer = build_tokenizer([a for _, a in pairs] + [
        f"<|user|>\n{t.instruction()}<|end|>\n<|assistant|>\n" for t in train + heldout + warm])
    model = build_model(tokenizer, seed=0, hidden_size=settings.hidden_size, layers=settings.layers)
    torch.set_num_threads(1)
    losses = warm_start(model, tokenizer, pairs, steps=settings.warm_steps,
                        batch_size=settings.warm_batch, lr=settings.warm_lr, seed=0)
    path = os.path.join(out, "warm_start")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    tail = losses[-min(20, len(losses)):]
    return {"path": path, "params": sum(p.numel() for p in model.parameters()),
            "vocab": len(tokenizer), "loss": sum(tail) / len(tail)}


def _run_arm(job: dict) -> dict:
    """One RL run (a worker process): returns its held-out curve."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .config import TrainConfig
    from .trainer import HiRTrainer

    torch.set_num_threads(1)
    _quiet_transformers()
    s: DemoSettings = job["settings"]
    model = AutoModelForCausalLM.from_pretrained(job["warm"])
    tokenizer = AutoTokenizer.from_pretrained(job["warm"])
    cfg = TrainConfig(
        model=job["warm"], out=job["out"], seed=job["seed"], steps=s.rl_steps,
        tasks_per_step=s.tasks_per_step, rollouts_per_task=s.rollouts_per_task,
        max_new_tokens=s.max_new_tokens, lr=s.lr, lr_schedule="constant",
        kl_loss_coef=s.kl_loss_coef, replay=job["arm"] == "hir", eval_every=s.eval_every,
        eval_tasks=len(job["heldout"]), eval_samples=s.eval_samples,
        eval_temperature=s.eval_temperature,
        progress=False, device="cpu")
    trainer = HiRTrainer(cfg, model=model, tokenizer=tokenizer, tasks=job["train"],
                         eval_tasks=job["heldout"])
    start = trainer.evaluate()
    curve = [[0, start["ila"], start["cla"]]]
    for m in trainer.train():
        if "eval_ila" in m:
            curve.append([m["rollouts"], m["eval_ila"], m["eval_cla"]])
    return {"arm": job["arm"], "seed": job["seed"], "curve": curve}


def _quiet_transformers() -> None:
    # Loading and saving a 0.2 MB model should not draw progress bars.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    if workers <= 1:
        return [_run_arm(j) for j in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fresh interpreter per worker, never a fork of a process with torch threads.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_run_arm, jobs))


def _first_reaching(curve: list[list[float]], target: float) -> int | None:
    """The first evaluated rollout count whose mean ILA is at least ``target`` (> 0)."""
    if target <= 0:
        return None
    return next((int(r) for r, ila in curve if ila >= target), None)


def summarize(results: list[dict], seeds: list[int], rollouts_per_arm: int) -> dict:
    """``summary.json``: per arm, final held-out ILA/CLA per seed and the mean ILA curve."""
    arms = {}
    for arm in ARMS:
        runs = sorted((r for r in results if r["arm"] == arm), key=lambda r: r["seed"])
        points = [p[0] for p in runs[0]["curve"]]
        arms[arm] = {
            "ila_final": [r["curve"][-1][1] for r in runs],
            "cla_final": [r["curve"][-1][2] for r in runs],
            "curve": [[int(x), statistics.fmean(r["curve"][i][1] for r in runs)]
                      for i, x in enumerate(points)],
        }
    return {"seeds": seeds, "rollouts_per_arm": rollouts_per_arm, "arms": arms}


def _mean_sd(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.3f} ± {sd:.3f}"


def report(summary: dict) -> str:
    """The table and the verdict, as printed."""
    arms = summary["arms"]
    target = statistics.fmean(arms["baseline"]["ila_final"])
    lines = [f"{'':26s}{'held-out ILA':>18s}{'held-out CLA':>18s}   rollouts to reach the "
             f"baseline's final ILA ({target:.3f})"]
    reached = {}
    for arm in ARMS:
        a = arms[arm]
        reached[arm] = _first_reaching(a["curve"], target)
        where = (f"{reached[arm]:,}" if reached[arm] is not None else
                 "not reached" if target > 0 else "- (the baseline's final ILA is 0)")
        lines.append(f"{ARM_NAMES[arm]:26s}{_mean_sd(a['ila_final']):>18s}"
                     f"{_mean_sd(a['cla_final']):>18s}   {where}")
    per_seed = "  ".join(f"seed {s}: {h:.3f} vs {b:.3f}" for s, h, b in
                         zip(summary["seeds"], arms["hir"]["ila_final"], arms["baseline"]["ila_final"]))
    lines.append(f"final ILA per seed (HiR vs baseline): {per_seed}")
    hir, base = statistics.fmean(arms["hir"]["ila_final"]), target
    wins = sum(h > b for h, b in zip(arms["hir"]["ila_final"], arms["baseline"]["ila_final"]))
    n = len(summary["seeds"])
    total = summary["rollouts_per_arm"]
    if hir > base and wins == n:
        speed = (f"; HiR reached the baseline's final ILA after {reached['hir']:,} of {total:,} "
                 f"rollouts ({reached['hir'] / total:.0%})" if reached["hir"] else "")
        verdict = (f"verdict: replay wins on every seed ({wins}/{n}): final held-out ILA "
                   f"{hir:.3f} vs {base:.3f} at equal rollouts{speed}.")
    elif hir > base:
        verdict = (f"verdict: replay is ahead on average ({hir:.3f} vs {base:.3f}) but wins only "
                   f"{wins} of {n} seeds: not a clear win.")
    else:
        verdict = (f"verdict: replay does NOT beat the baseline here: final held-out ILA "
                   f"{hir:.3f} vs {base:.3f} ({wins} of {n} seeds ahead).")
    lines.append(verdict)
    return "\n".join(lines)


def plot_curves(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = {"hir": "tab:blue", "baseline": "tab:orange"}
    for col, (ax, title) in enumerate(zip(axes, ("held-out ILA (all constraints met)",
                                                 "held-out CLA (share of constraints met)"))):
        for arm in ARMS:
            runs = [r for r in results if r["arm"] == arm]
            for r in runs:
                ax.plot([p[0] for p in r["curve"]], [p[1 + col] for p in r["curve"]],
                        color=colors[arm], alpha=0.25, linewidth=1)
            xs = [p[0] for p in runs[0]["curve"]]
            mean = [statistics.fmean(r["curve"][i][1 + col] for r in runs) for i in range(len(xs))]
            ax.plot(xs, mean, color=colors[arm], linewidth=2.5, marker="o", markersize=4,
                    label=f"{ARM_NAMES[arm]} (mean of {len(runs)} seeds)")
        ax.set_title(title)
        ax.set_xlabel("rollouts (generated responses)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(out: str, seeds: list[int], settings: DemoSettings = FULL, *, workers: int = 2,
             log=print) -> dict:
    """Run the whole demo into ``out``; return the summary (also written to summary.json)."""
    from . import verify
    from .data import write_tasks
    from .demo_model import DEMO_IDS

    t0 = time.time()
    _quiet_transformers()
    known = set(verify.instruction_ids())
    ids = [i for i in DEMO_IDS if i in known]
    missing = [i for i in DEMO_IDS if i not in known]
    if len(ids) < 3:
        raise RuntimeError(f"the constraint checker knows only {ids} of the demo's ids; it needs "
                           f"at least 3 (missing: {missing})")
    if missing:
        log(f"note: the checker lacks {missing}; the demo uses the other {len(ids)} ids")
    os.makedirs(out, exist_ok=True)
    train, heldout, warm = _world(settings, ids)
    write_tasks(os.path.join(out, "train_tasks.jsonl"), train)
    write_tasks(os.path.join(out, "heldout_tasks.jsonl"), heldout)
    log(f"hirfast demo: {len(ids)} IFEval constraint types, tasks of 3-5 constraints; "
        f"{len(train)} training tasks, {len(heldout)} held-out tasks")
    info = _warm_start(settings, out, train, heldout, warm)
    log(f"warm start: tiny Llama, {info['params']:,} parameters, vocabulary {info['vocab']}; "
        f"{settings.warm_steps} supervised steps (final loss {info['loss']:.2f}) "
        f"[{time.time() - t0:.0f} s]")
    per_arm = settings.rl_steps * settings.tasks_per_step * settings.rollouts_per_task
    log(f"RL: {settings.rl_steps} steps x {settings.tasks_per_step} tasks x "
        f"{settings.rollouts_per_task} rollouts = {per_arm:,} rollouts per run; "
        f"{len(seeds)} seed(s) x {{HiR, REINFORCE++ without replay}}, identical otherwise")
    jobs = [{"arm": arm, "seed": seed, "settings": settings, "warm": info["path"],
             "out": os.path.join(out, "runs", f"{arm}-seed{seed}"), "train": train,
             "heldout": heldout} for seed in seeds for arm in ARMS]
    results = _run_jobs(jobs, min(workers, len(jobs)))
    summary = summarize(results, list(seeds), per_arm)
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    plot_curves(results, os.path.join(out, "curves.png"))
    log("")
    log(report(summary))
    log(f"\nwrote {os.path.join(out, 'summary.json')}, {os.path.join(out, 'curves.png')} and "
        f"runs/*/metrics.jsonl  [{time.time() - t0:.0f} s]")
    return summary


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="hirfast-out/demo", metavar="DIR",
                        help="output directory (default: hirfast-out/demo)")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help="how many seeds (default 3); each runs both arms")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced setting that finishes in well under a minute (for tests)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="parallel runs, one thread each (default: one per core, at most one "
                             "per run)")


def main(args) -> int:
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    if args.seeds < 1 or workers < 1:
        print("hirfast demo: --seeds and --workers must be at least 1", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else FULL
    try:
        run_demo(args.out, list(range(args.seeds)), settings, workers=workers)
    except RuntimeError as e:
        print(f"hirfast demo: {e}", file=sys.stderr)
        return 2
    return 0

