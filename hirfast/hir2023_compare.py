"""``hirfast hir2023-compare``: HIR 2023 against HiR and REINFORCE++ on ``hirfast demo``'s world,
with the demo's own machinery, so that the arms differ only in the method.

Everything but the HIR 2023 arm is ``hirfast.demo``'s: the world (``DemoSettings`` FULL or QUICK:
tasks, tokenizer, tiny Llama), the supervised warm start and its reading check, the two RL arms
(``demo._run_arm``: HiR, and REINFORCE++ without replay; the same seeds give the demo's own
numbers), and the evaluation (``demo.evaluate_policy``: held-out tasks never trained on,
``eval_samples`` samples at T = 1 with common random numbers across arms, and greedy; own and
shuffled ILA/CLA; paired 95% intervals over tasks).

The third arm, ``hir2023`` (``algorithm: hir2023``, ``hirfast.hir2023_train``), starts from the
same warm start, trains on the same tasks in the same order (``TaskSampler`` draws the same
sequence whatever the batch size) and generates the same number of responses as an RL run
(``rl_steps x tasks_per_step x rollouts_per_task``), spent in ``iterations`` rounds of the seed's
loop: sample at T = 1, relabel in hindsight, train ``epochs`` epochs over the whole growing store.
It trains on more tokens than the RL arms (every epoch revisits the store): the report prints each
arm's trained tokens.

The same command on the same machine writes the same ``summary.json`` (no timings in it). Each
run's full result (per-task evaluations) is kept in ``runs/<arm>-seed<N>/result.json``; with
``--arms`` a later command runs only some arms and takes the others from there, when they were
made with the same settings from the same warm start.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace

from . import demo
from .demo import FULL, QUICK, DemoSettings

__all__ = ["Hir2023Settings", "H23_FULL", "H23_QUICK", "ARMS", "hir2023_plan", "run_compare",
           "summarize", "report", "add_arguments", "main"]

ARMS = ("hir2023", "hir", "baseline")
ARM_NAMES = {"hir2023": "HIR 2023 (relabel+contrast)", **demo.ARM_NAMES}
SHORT = {"hir2023": "HIR 2023", "hir": "HiR", "baseline": "REINFORCE++"}


@dataclass(frozen=True)
class Hir2023Settings:
    """The HIR 2023 arm's own hyper-parameters (chosen once, before any run on this world; see
    the README): few iterations of the seed's loop, its batch size and learning rate (also the RL
    arms' rate), no label smoothing (with the seed's 0.2 the T = 1 sampling loop degenerated on
    the earlier demo world), 2 epochs per iteration (the seed's 10 would not fit the CPU budget)."""

    iterations: int = 4
    epochs: int = 2
    batch_size: int = 64
    lr: float = 5e-4
    label_smoothing: float = 0.0
    contrast: str = "two-way"


H23_FULL = Hir2023Settings()
H23_QUICK = Hir2023Settings(iterations=2, epochs=1, batch_size=4)


def hir2023_plan(settings: DemoSettings, h: Hir2023Settings) -> dict:
    """How HIR 2023 spends an RL run's rollouts: ``iterations`` x ``tasks_per_iteration`` tasks x
    ``rollouts_per_task`` = ``rollouts``, the RL arms' ``rl_steps x tasks_per_step x
    rollouts_per_task``. Raises ValueError when the tasks do not split evenly."""
    tasks = settings.rl_steps * settings.tasks_per_step
    if h.iterations < 1 or tasks % h.iterations:
        raise ValueError(f"{h.iterations} HIR 2023 iterations do not split the RL arms' {tasks} "
                         f"tasks ({settings.rl_steps} steps x {settings.tasks_per_step}) evenly")
    return {"iterations": h.iterations, "tasks_per_iteration": tasks // h.iterations,
            "rollouts_per_task": settings.rollouts_per_task,
            "rollouts": tasks * settings.rollouts_per_task}


# --- the HIR 2023 run (a worker job) ------------------------------------------------------------

def _run_hir2023(job: dict) -> dict:
    """One HIR 2023 run from the warm start: its held-out curve (after every iteration, as the
    RL arms' curve: ``curve_tasks`` tasks, 2 samples at T = 1), the final evaluation exactly as
    ``demo._run_arm``'s, trained tokens and rollouts."""
    from .hir2023_train import Hir2023Trainer

    s: DemoSettings = job["settings"]
    h: Hir2023Settings = job["hir2023"]
    plan = hir2023_plan(s, h)
    trainer, tokenizer, curve, history = demo.train_run(
        job, Hir2023Trainer, algorithm="hir2023", steps=plan["iterations"],
        tasks_per_step=plan["tasks_per_iteration"], lr=h.lr, hir2023_epochs=h.epochs,
        hir2023_batch_size=h.batch_size, hir2023_label_smoothing=h.label_smoothing,
        hir2023_contrast=h.contrast, eval_every=1)
    heldout = job["heldout"]
    return {"arm": "hir2023", "seed": job["seed"], "curve": curve,
            "train_tokens": sum(m["train_tokens"] for m in history),
            "rollouts": trainer.rollouts, "optimizer_steps": sum(m["optimizer_steps"] for m in history),
            **demo.final_evaluation(trainer.model, tokenizer, heldout, s)}


# --- summary and report -------------------------------------------------------------------------

def summarize(results: list[dict], seeds: list[int], rollouts_per_arm: int, world: dict,
              hir2023: dict) -> dict:
    """``summary.json``: per arm present (in ``ARMS`` order) what ``demo.summarize`` keeps plus
    the rollouts of each run; HIR 2023 minus each RL arm, and each arm's own minus shuffled, with
    paired intervals over tasks (per-task values averaged over seeds)."""
    present = [a for a in ARMS if any(r["arm"] == a for r in results)]
    arms = {}
    for arm in present:
        runs = sorted((r for r in results if r["arm"] == arm), key=lambda r: r["seed"])
        arms[arm] = {**demo.arm_summary(runs), "rollouts": [r["rollouts"] for r in runs]}

    def means(arm, mode, key):
        return demo.per_task_means(results, arm, mode, key)

    comparison = {}
    for mode in ("sampled", "greedy"):
        c = {}
        if "hir2023" in present:
            for other in present[1:]:
                c[f"hir2023_minus_{other}_own_ila"] = demo.paired_interval(
                    means("hir2023", mode, "own_ila"), means(other, mode, "own_ila"))
        for arm in present:
            c[f"{arm}_own_minus_shuffled_ila"] = demo.paired_interval(
                means(arm, mode, "own_ila"), means(arm, mode, "shuffled_ila"))
        comparison[mode] = c
    return {"seeds": seeds, "rollouts_per_arm": rollouts_per_arm, "hir2023": hir2023,
            "world": world, "arms": arms, "comparison": comparison}


def _verdict(cmp_: dict, other: str) -> str:
    d, low, high = cmp_[f"hir2023_minus_{other}_own_ila"]
    ci = f"95% CI [{low:+.3f}, {high:+.3f}]"
    name = SHORT[other]
    if low > 0:
        return (f"verdict vs {name}: HIR 2023 wins: held-out own ILA {d:+.3f} over {name} at equal "
                f"rollouts ({ci} excludes 0).")
    if high < 0:
        return (f"verdict vs {name}: {name} wins: HIR 2023's held-out own ILA is {-d:.3f} below it "
                f"({ci} excludes 0).")
    return (f"verdict vs {name}: no winner: HIR 2023 - {name} own ILA {d:+.3f}, {ci} includes 0.")


def report(summary: dict) -> str:
    """The table, the intervals and the verdicts, as printed."""
    arms, cmp_, seeds = summary["arms"], summary["comparison"], summary["seeds"]
    med = statistics.median
    lines = [f"held-out tasks, {len(seeds)} seed(s); ILA = all 3 constraints met; 'shuffled' judges "
             "the same responses against another task's constraints (the control)",
             f"{'':28s}{'own ILA (median)':>17s}{'shuffled':>10s}{'gap':>8s}{'greedy own':>12s}"
             f"{'greedy shuf.':>13s}{'own CLA':>9s}{'train tokens':>14s}{'rollouts':>10s}"]
    for arm, a in arms.items():
        gap = [o - s for o, s in zip(a["sampled_own_ila"], a["sampled_shuffled_ila"])]
        lines.append(f"{ARM_NAMES[arm]:28s}{med(a['sampled_own_ila']):>17.3f}"
                     f"{med(a['sampled_shuffled_ila']):>10.3f}{med(gap):>+8.3f}"
                     f"{med(a['greedy_own_ila']):>12.3f}{med(a['greedy_shuffled_ila']):>13.3f}"
                     f"{med(a['sampled_own_cla']):>9.3f}{statistics.fmean(a['train_tokens']):>14,.0f}"
                     f"{statistics.fmean(a['rollouts']):>10,.0f}")
    for mode, key in (("T=1", "sampled_own_ila"), ("greedy", "greedy_own_ila")):
        lines.append(f"own ILA per seed ({mode}): " + " | ".join(
            f"{SHORT[arm]} " + " ".join(f"{x:.3f}" for x in a[key]) for arm, a in arms.items()))
    for mode in ("sampled", "greedy"):
        c = cmp_[mode]
        diffs = [f"HIR 2023 - {SHORT[o]} {demo._fmt_interval(c[f'hir2023_minus_{o}_own_ila'])}"
                 for o in arms if f"hir2023_minus_{o}_own_ila" in c]
        gaps = ", ".join(f"{SHORT[a]} {demo._fmt_interval(c[f'{a}_own_minus_shuffled_ila'])}"
                         for a in arms)
        lines.append(f"{mode + ':':9s} " + ("own ILA " + "; ".join(diffs) + "; " if diffs else "")
                     + f"own - shuffled: {gaps}  (95% CI over tasks)")
    for other in arms:
        if f"hir2023_minus_{other}_own_ila" in cmp_["sampled"]:
            lines.append(_verdict(cmp_["sampled"], other))
    return "\n".join(lines)


# --- reuse of earlier runs ----------------------------------------------------------------------

def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run_key(arm: str, settings: DemoSettings, h: Hir2023Settings, warm_digest: str) -> dict:
    """What a kept result must match to be reused: the world's settings, HIR 2023's (for that
    arm), the warm start's weights."""
    key = {"settings": asdict(settings), "warm_start_sha256": warm_digest}
    if arm == "hir2023":
        key["hir2023"] = asdict(h)
    return key


def _load_kept(path: str, key: dict):
    try:
        with open(path, encoding="utf-8") as fh:
            kept = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or kept.get("key") != key or not isinstance(kept.get("result"), dict):
        return None
    return kept["result"]


def _check_warm_start(path: str, settings: DemoSettings, tokenizer) -> None:
    """Refuse a warm start that is not this world's (another model shape or vocabulary)."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path)
        loaded = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"--warm-start {path}: not a saved model and tokenizer ({e})") from None
    shape = (config.hidden_size, config.intermediate_size, config.num_hidden_layers)
    want = (settings.hidden_size, settings.intermediate_size, settings.layers)
    if shape != want:
        raise RuntimeError(f"--warm-start {path}: hidden/MLP/layers {shape}, this setting's are {want}")
    if loaded.get_vocab() != tokenizer.get_vocab():
        raise RuntimeError(f"--warm-start {path}: its vocabulary is not this world's (another "
                           f"setting's warm start?)")


# --- the whole comparison -----------------------------------------------------------------------

def run_compare(out: str, seeds: list[int], settings: DemoSettings = FULL,
                h23: Hir2023Settings = H23_FULL, *, arms=ARMS, workers: int = 2,
                warm_start: str | None = None, log=print) -> dict:
    """Run the comparison into ``out``; return the summary (also written to summary.json)."""
    import torch

    t0 = time.time()
    plan = hir2023_plan(settings, h23)
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise ValueError(f"arms must be some of {', '.join(ARMS)} (got {', '.join(arms) or 'none'})")
    train, heldout, warm, world = demo.setup_world(out, settings)
    log(f"hirfast hir2023-compare: hirfast demo's world and machinery; {len(train)} training "
        f"tasks, {len(heldout)} held-out tasks; the best constant answer's held-out ILA "
        f"{world['constant_ila']:.3f}, the oracle's {world['oracle_ila']:.3f}")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    per_arm = plan["rollouts"]
    with demo._pool(workers) as pool:
        if warm_start:
            _check_warm_start(warm_start, settings, demo.warm_data(settings, train, heldout, warm)[1])
            path = warm_start
            log(f"warm start: reused from {warm_start} (this world's shape and vocabulary)")
        else:
            info = demo._warm_start(settings, out, train, heldout, warm, pool, workers, log)
            path = info["path"]
            log(f"warm start: tiny Llama, {info['params']:,} parameters, vocabulary {info['vocab']}; "
                f"{settings.warm_steps} supervised steps (final loss {info['loss']:.2f}) "
                f"[{time.time() - t0:.0f} s]")
        digest = _file_digest(os.path.join(path, "model.safetensors"))
        log(f"{per_arm:,} rollouts per run: RL arms {settings.rl_steps} steps x "
            f"{settings.tasks_per_step} tasks x {settings.rollouts_per_task} (lr {settings.lr}, KL "
            f"{settings.kl_loss_coef}); HIR 2023 {plan['iterations']} iterations x "
            f"{plan['tasks_per_iteration']} tasks x {settings.rollouts_per_task}, {h23.epochs} "
            f"epoch(s) over the store per iteration, batch {h23.batch_size}, lr {h23.lr}, label "
            f"smoothing {h23.label_smoothing}, {h23.contrast} contrast; {len(seeds)} seed(s)")
        base = {"settings": settings, "warm": path, "train": train, "heldout": heldout}
        jobs = [dict(base, fn="warm_eval")]
        kept = []
        # HIR 2023 runs first: they are the longest, and the pool starts jobs in this order.
        for arm in ARMS:
            for seed in seeds:
                run_dir = os.path.join(out, "runs", f"{arm}-seed{seed}")
                if arm in arms:
                    jobs.append(dict(base, fn="run_hir2023" if arm == "hir2023" else "run_arm",
                                     arm=arm, seed=seed, hir2023=h23, out=run_dir))
                    continue
                result = _load_kept(os.path.join(run_dir, "result.json"),
                                    _run_key(arm, settings, h23, digest))
                if result is not None:
                    kept.append(result)
        reused = sorted({r["arm"] for r in kept})
        for arm in reused:
            if sum(r["arm"] == arm for r in kept) < len(seeds):
                log(f"  {arm}: kept results for only some seeds; left out")
                kept = [r for r in kept if r["arm"] != arm]
        if kept:
            log(f"  reused from {os.path.join(out, 'runs')}: "
                + ", ".join(sorted({r['arm'] for r in kept})) + " (same settings and warm start)")
        results = demo._run_jobs(jobs, pool, log, fns={"run_hir2023": _run_hir2023})
    ev, ran = results[0], results[1:]
    for job, result in zip(jobs[1:], ran):
        with open(os.path.join(job["out"], "result.json"), "w", encoding="utf-8") as fh:
            json.dump({"key": _run_key(job["arm"], settings, h23, digest), "result": result}, fh)
    world.update({"warm_start": ev, "warm_start_reads": ev["own_cla"] - ev["shuffled_cla"] >= demo.READING_GATE,
                  "settings": asdict(settings)})
    summary = summarize(ran + kept, list(seeds), per_arm, world, {**asdict(h23), **plan})
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    log("")
    log(demo._warm_eval_line(ev).strip())
    log(report(summary))
    log(f"\nwrote {os.path.join(out, 'summary.json')} and runs/*/  [{time.time() - t0:.0f} s]")
    return summary


def add_arguments(parser) -> None:
    demo.add_world_arguments(parser, "hirfast-out/hir2023-compare", seeds="as hirfast demo",
                             quick="hirfast demo's reduced setting (seconds; the tests)")
    parser.add_argument("--arms", default=",".join(ARMS), metavar="A,B",
                        help=f"arms to run (default all: {','.join(ARMS)}); the others are taken "
                             "from runs/*/result.json of an earlier run into the same --out with "
                             "the same settings and warm start, when there")
    parser.add_argument("--warm-start", metavar="DIR", default=None,
                        help="reuse a warm start of the same setting (e.g. hirfast-out/demo/"
                             "warm_start) instead of training one")
    parser.add_argument("--hir2023-iterations", type=int, default=None, metavar="N",
                        help=f"HIR 2023's iterations (default {H23_FULL.iterations}; must divide "
                             "the RL arms' tasks)")
    parser.add_argument("--hir2023-epochs", type=int, default=None, metavar="N",
                        help=f"epochs over the store per iteration (default {H23_FULL.epochs})")
    parser.add_argument("--hir2023-lr", type=float, default=None, metavar="LR",
                        help=f"HIR 2023's learning rate (default {H23_FULL.lr}, the seed's)")
    parser.add_argument("--hir2023-label-smoothing", type=float, default=None, metavar="EPS",
                        help=f"label smoothing (default {H23_FULL.label_smoothing}; the seed's 0.2)")
    parser.add_argument("--hir2023-contrast", default=None, choices=["two-way", "in-batch", "off"],
                        help="the contrast (default two-way, the seed's code)")


def main(args) -> int:
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    if args.seeds < 1 or workers < 1:
        print("hirfast hir2023-compare: --seeds and --workers must be at least 1", file=sys.stderr)
        return 2
    settings, h23 = (QUICK, H23_QUICK) if args.quick else (FULL, H23_FULL)
    overrides = {k: v for k, v in (("iterations", args.hir2023_iterations),
                                   ("epochs", args.hir2023_epochs), ("lr", args.hir2023_lr),
                                   ("label_smoothing", args.hir2023_label_smoothing),
                                   ("contrast", args.hir2023_contrast)) if v is not None}
    h23 = replace(h23, **overrides)
    if h23.epochs < 1 or h23.lr <= 0 or not 0 <= h23.label_smoothing < 1:
        print("hirfast hir2023-compare: --hir2023-epochs must be >= 1, --hir2023-lr > 0 and "
              "--hir2023-label-smoothing in [0, 1)", file=sys.stderr)
        return 2
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    try:
        run_compare(args.out, list(range(args.seeds)), settings, h23, arms=arms, workers=workers,
                    warm_start=args.warm_start)
    except (ValueError, RuntimeError) as e:
        print(f"hirfast hir2023-compare: {e}", file=sys.stderr)
        return 2
    return 0
