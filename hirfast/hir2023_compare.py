"""``hirfast hir2023-compare``: HIR 2023 against HiR and REINFORCE++ on the demo's world.

The world is ``hirfast demo``'s (``hirfast.demo_model``: synthetic tasks of 3-5 IFEval
constraints, a word-level tokenizer, a tiny Llama, one supervised warm start). From that warm start,
per seed, three arms with the same training tasks, the same number of rollouts (generated
responses) and the same held-out evaluation:

- ``hir2023``: ``algorithm: hir2023`` (constraint relabeling, the two-way contrastive loss), few
  iterations of many rollouts each, the store trained ``epochs`` times per iteration;
- ``hir``: HiR (replay of rewritten failures, REINFORCE++), as ``hirfast demo`` runs it;
- ``reinforce``: REINFORCE++ without replay, as ``hirfast demo``'s baseline.

Evaluation of each final model on held-out tasks (instructions never trained on): samples at
temperature 1 with fixed seeds (the same for every arm), scored against their own task ("own") and
against a randomly permuted task ("shuffled": a response to task j checked against task i's
constraints). Learning to follow instructions shows as own ILA rising above shuffled ILA; a rise of
both is instruction-independent. Greedy own ILA is reported too. Training compute differs by
design (HIR 2023 trains many epochs on its store): the table gives each arm's trained tokens.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass

__all__ = ["CompareSettings", "FULL", "QUICK", "run_compare", "add_arguments", "main"]

ARMS = ("hir2023", "hir", "reinforce")
ARM_NAMES = {"hir2023": "HIR 2023 (relabel + contrast)", "hir": "HiR (replay, RL)",
             "reinforce": "REINFORCE++ (no replay)"}


@dataclass(frozen=True)
class CompareSettings:
    train_tasks: int = 2000
    heldout_tasks: int = 192
    warm_tasks: int = 3000
    follow_prob: float = 0.3
    warm_steps: int = 400
    warm_batch: int = 32
    warm_lr: float = 3e-3
    hidden_size: int = 64
    rollouts_per_task: int = 4
    max_new_tokens: int = 64
    # RL arms: rl_steps x tasks_per_step tasks; HIR 2023: iterations x (the same total) / iterations
    rl_steps: int = 60
    tasks_per_step: int = 8
    rl_lr: float = 3e-4
    kl_loss_coef: float = 0.1
    iterations: int = 3
    hir2023_epochs: int = 2
    hir2023_batch_size: int = 64
    hir2023_lr: float = 5e-4
    hir2023_contrast: str = "two-way"
    hir2023_label_smoothing: float = 0.2
    eval_samples: int = 2


FULL = CompareSettings()
QUICK = CompareSettings(train_tasks=60, heldout_tasks=6, warm_tasks=60, warm_steps=6, warm_batch=4,
                        hidden_size=32, rollouts_per_task=2, max_new_tokens=12, rl_steps=2,
                        tasks_per_step=3, iterations=2, hir2023_epochs=1, hir2023_batch_size=4,
                        eval_samples=1)


def _world(s: CompareSettings, ids):
    from .demo_model import demo_tasks

    train = demo_tasks(s.train_tasks, seed=0, available_ids=ids, key_prefix="train")
    seen = {t.instruction() for t in train}
    heldout = [t for t in demo_tasks(s.heldout_tasks * 3, seed=10_000, available_ids=ids,
                                     key_prefix="heldout") if t.instruction() not in seen]
    warm = demo_tasks(s.warm_tasks, seed=20_000, available_ids=ids, key_prefix="warm")
    return train, heldout[:s.heldout_tasks], warm


def _warm_start(s: CompareSettings, out: str, train, heldout, warm) -> dict:
    import torch

    from .constraints import render
    from .demo_model import build_model, build_tokenizer, sample_response, warm_start

    rng = random.Random(1)
    pairs = [(t.instruction(), sample_response(rng, t, s.follow_prob)) for t in warm]
    wrap = "<|user|>\n{}<|end|>\n<|assistant|>\n"
    # Rewritten instructions (one constraint kept) too, so that relabeled prompts tokenize.
    texts = [a for _, a in pairs] + [wrap.format(t.instruction()) for t in train + heldout + warm]
    texts += [wrap.format(render(t.query, [c])) for t in train[:400] for c in t.constraints]
    tokenizer = build_tokenizer(texts)
    model = build_model(tokenizer, seed=0, hidden_size=s.hidden_size, layers=2)
    torch.set_num_threads(1)
    losses = warm_start(model, tokenizer, pairs, steps=s.warm_steps, batch_size=s.warm_batch,
                        lr=s.warm_lr, seed=0)
    path = os.path.join(out, "warm_start")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    tail = losses[-min(20, len(losses)):]
    return {"path": path, "params": sum(p.numel() for p in model.parameters()),
            "loss": sum(tail) / len(tail)}


def heldout_scores(trainer, tasks, *, samples: int, seed: int, temperature: float = 1.0) -> dict:
    """Own and shuffled ILA/CLA of ``samples`` responses per held-out task (fixed seed), and the
    permutation used. Shuffled: task i's constraints checked on a response to task perm[i]."""
    from .trainer import _step_seed

    groups = trainer._rollout(tasks, samples, temperature, _step_seed(seed, 0, stream=1))
    perm = list(range(len(tasks)))
    random.Random(seed + 17).shuffle(perm)
    own = trainer._verify(tasks, groups)
    shuffled = trainer._verify(tasks, [groups[j] for j in perm])

    def ila_cla(sats):
        flat = [s for g in sats for s in g]
        return sum(all(s) for s in flat) / len(flat), sum(map(sum, flat)) / sum(map(len, flat))

    (oi, oc), (si, sc) = ila_cla(own), ila_cla(shuffled)
    return {"own_ila": oi, "own_cla": oc, "shuffled_ila": si, "shuffled_cla": sc, "perm": perm}


def _run_arm(job: dict) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .config import TrainConfig
    from .hir2023_train import Hir2023Trainer
    from .trainer import HiRTrainer

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    s: CompareSettings = job["settings"]
    arm = job["arm"]
    model = AutoModelForCausalLM.from_pretrained(job["warm"])
    tokenizer = AutoTokenizer.from_pretrained(job["warm"])
    total_tasks = s.rl_steps * s.tasks_per_step
    common = dict(model=job["warm"], out=job["out"], seed=job["seed"],
                  rollouts_per_task=s.rollouts_per_task, max_new_tokens=s.max_new_tokens,
                  progress=False, device="cpu", lr_schedule="constant")
    if arm == "hir2023":
        cfg = TrainConfig(**common, algorithm="hir2023", steps=s.iterations,
                          tasks_per_step=total_tasks // s.iterations, lr=s.hir2023_lr,
                          hir2023_epochs=s.hir2023_epochs, hir2023_batch_size=s.hir2023_batch_size,
                          hir2023_contrast=s.hir2023_contrast,
                          hir2023_label_smoothing=s.hir2023_label_smoothing)
        cls = Hir2023Trainer
    else:
        cfg = TrainConfig(**common, steps=s.rl_steps, tasks_per_step=s.tasks_per_step, lr=s.rl_lr,
                          kl_loss_coef=s.kl_loss_coef, replay=arm == "hir")
        cls = HiRTrainer
    trainer = cls(cfg, model=model, tokenizer=tokenizer, tasks=job["train"], eval_tasks=job["heldout"])
    t0 = time.time()
    history = trainer.train()
    seconds = time.time() - t0
    if arm == "hir2023":
        tokens = sum(m["train_tokens"] for m in history)
    else:
        tokens = sum(m["tokens_per_s_train"] * m["time_train"] for m in history)
    scores = heldout_scores(trainer, job["heldout"], samples=s.eval_samples, seed=1000)
    greedy = trainer.evaluate(job["heldout"], samples=1, temperature=0.0, seed=1000)
    return {"arm": arm, "seed": job["seed"], "rollouts": trainer.rollouts, "train_tokens": int(tokens),
            "seconds": seconds, "greedy_ila": greedy["ila"],
            **{k: v for k, v in scores.items() if k != "perm"}}


def _warm_scores(job: dict) -> dict:
    """The warm start's own / shuffled scores (what every arm starts from)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .config import TrainConfig
    from .trainer import HiRTrainer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(job["warm"])
    tokenizer = AutoTokenizer.from_pretrained(job["warm"])
    s = job["settings"]
    cfg = TrainConfig(model=job["warm"], out=job["out"], max_new_tokens=s.max_new_tokens,
                      progress=False, device="cpu")
    trainer = HiRTrainer(cfg, model=model, tokenizer=tokenizer, tasks=job["train"],
                         eval_tasks=job["heldout"])
    scores = heldout_scores(trainer, job["heldout"], samples=s.eval_samples, seed=1000)
    scores.pop("perm")
    scores["greedy_ila"] = trainer.evaluate(job["heldout"], samples=1, temperature=0.0, seed=1000)["ila"]
    return scores


def _run_jobs(fn, jobs: list[dict], workers: int) -> list[dict]:
    if workers <= 1:
        return [fn(j) for j in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, jobs))


def _mean_sd(xs) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.3f} ± {sd:.3f}"


def report(summary: dict) -> str:
    arms, seeds = summary["arms"], summary["seeds"]
    w = summary["warm_start"]
    lines = [f"warm start (every arm's start): own ILA {w['own_ila']:.3f} CLA {w['own_cla']:.3f} | "
             f"shuffled ILA {w['shuffled_ila']:.3f} CLA {w['shuffled_cla']:.3f} | greedy own ILA "
             f"{w['greedy_ila']:.3f}",
             f"{'':30s}{'own ILA':>15s}{'shuffled ILA':>15s}{'own-shuf ILA':>14s}{'own CLA':>15s}"
             f"{'greedy ILA':>15s}{'train tokens':>14s}"]
    for arm in ARMS:
        runs = arms[arm]
        gap = [r["own_ila"] - r["shuffled_ila"] for r in runs]
        lines.append(f"{ARM_NAMES[arm]:30s}{_mean_sd([r['own_ila'] for r in runs]):>15s}"
                     f"{_mean_sd([r['shuffled_ila'] for r in runs]):>15s}{statistics.fmean(gap):>+14.3f}"
                     f"{_mean_sd([r['own_cla'] for r in runs]):>15s}"
                     f"{_mean_sd([r['greedy_ila'] for r in runs]):>15s}"
                     f"{statistics.fmean(r['train_tokens'] for r in runs):>14,.0f}")
    for arm in ARMS:
        lines.append(f"own ILA per seed, {arm}: " + "  ".join(
            f"seed {r['seed']}: {r['own_ila']:.3f}" for r in arms[arm]))
    lines.append(f"rollouts per run: {summary['rollouts_per_arm']:,} (every arm); {len(seeds)} seed(s)")
    h = [r["own_ila"] for r in arms["hir2023"]]
    for other in ("hir", "reinforce"):
        o = [r["own_ila"] for r in arms[other]]
        wins = sum(a > b for a, b in zip(h, o))
        mh, mo = statistics.fmean(h), statistics.fmean(o)
        word = ("ahead on every seed" if wins == len(h) and mh > mo else
                "behind on every seed" if wins == 0 and mh < mo else "not a clear difference")
        lines.append(f"verdict vs {ARM_NAMES[other]}: HIR 2023 own ILA {mh:.3f} vs {mo:.3f}, "
                     f"ahead on {wins} of {len(h)} seeds: {word}.")
    return "\n".join(lines)


def run_compare(out: str, seeds: list[int], settings: CompareSettings = FULL, *, workers: int = 2,
                warm_start: str | None = None, log=print) -> dict:
    from . import verify
    from .demo_model import DEMO_IDS

    t0 = time.time()
    known = set(verify.instruction_ids())
    ids = [i for i in DEMO_IDS if i in known]
    os.makedirs(out, exist_ok=True)
    train, heldout, warm = _world(settings, ids)
    log(f"hirfast hir2023-compare: the demo's world, {len(ids)} constraint types; {len(train)} "
        f"training tasks, {len(heldout)} held-out tasks")
    if warm_start:
        from transformers import AutoModelForCausalLM

        loaded = AutoModelForCausalLM.from_pretrained(warm_start)
        info = {"path": warm_start, "params": sum(p.numel() for p in loaded.parameters()),
                "loss": float("nan")}
        log(f"warm start reused from {warm_start} (it must come from the same settings)")
    else:
        info = _warm_start(settings, out, train, heldout, warm)
        log(f"warm start: tiny Llama, {info['params']:,} parameters, {settings.warm_steps} "
            f"supervised steps (final loss {info['loss']:.2f}) [{time.time() - t0:.0f} s]")
    per_arm = settings.rl_steps * settings.tasks_per_step * settings.rollouts_per_task
    log(f"{per_arm:,} rollouts per run: RL arms {settings.rl_steps} steps x {settings.tasks_per_step} "
        f"tasks x {settings.rollouts_per_task}; HIR 2023 {settings.iterations} iterations x "
        f"{settings.rl_steps * settings.tasks_per_step // settings.iterations} tasks x "
        f"{settings.rollouts_per_task}, {settings.hir2023_epochs} epochs per iteration; "
        f"{len(seeds)} seed(s) x 3 arms")
    base = {"settings": settings, "warm": info["path"], "train": train, "heldout": heldout}
    jobs = [dict(base, arm=arm, seed=seed, out=os.path.join(out, "runs", f"{arm}-seed{seed}"))
            for seed in seeds for arm in ARMS]
    warm_job = dict(base, out=os.path.join(out, "runs", "warm"))
    results = _run_jobs(_run_arm, jobs, min(workers, len(jobs)))
    warm_scores = _warm_scores(warm_job)
    summary = {"seeds": list(seeds), "rollouts_per_arm": per_arm, "settings": asdict(settings),
               "warm_start": warm_scores,
               "arms": {arm: sorted((r for r in results if r["arm"] == arm), key=lambda r: r["seed"])
                        for arm in ARMS}}
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    log("")
    log(report(summary))
    log(f"\nwrote {os.path.join(out, 'summary.json')}  [{time.time() - t0:.0f} s]")
    return summary


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="hirfast-out/hir2023-compare", metavar="DIR")
    parser.add_argument("--seeds", type=int, default=2, metavar="N", help="seeds (default 2)")
    parser.add_argument("--quick", action="store_true", help="a reduced setting (seconds; tests)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="parallel runs, one thread each (default: one per core)")
    parser.add_argument("--warm-start", metavar="DIR", default=None,
                        help="reuse the warm_start/ of an earlier run with the same settings")
    parser.add_argument("--hir2023-lr", type=float, default=None, metavar="LR",
                        help=f"HIR 2023's learning rate (default {FULL.hir2023_lr}, the seed's)")
    parser.add_argument("--hir2023-epochs", type=int, default=None, metavar="N",
                        help=f"HIR 2023's epochs per iteration (default {FULL.hir2023_epochs})")
    parser.add_argument("--hir2023-label-smoothing", type=float, default=None, metavar="EPS",
                        help="HIR 2023's label smoothing (default 0.2, the seed's)")
    parser.add_argument("--hir2023-contrast", default=None, choices=["two-way", "in-batch", "off"],
                        help="HIR 2023's contrast (default two-way, the seed's code)")


def main(args) -> int:
    workers = args.workers if args.workers is not None else os.cpu_count() or 1
    if args.seeds < 1 or workers < 1:
        print("hirfast hir2023-compare: --seeds and --workers must be at least 1", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else FULL
    overrides = {k: v for k, v in (("hir2023_lr", args.hir2023_lr), ("hir2023_epochs", args.hir2023_epochs),
                                   ("hir2023_contrast", args.hir2023_contrast),
                                   ("hir2023_label_smoothing", args.hir2023_label_smoothing))
                 if v is not None}
    if (overrides.get("hir2023_epochs", 1) < 1 or overrides.get("hir2023_lr", 1) <= 0
            or not 0 <= overrides.get("hir2023_label_smoothing", 0) < 1):
        print("hirfast hir2023-compare: --hir2023-epochs must be >= 1, --hir2023-lr > 0 and "
              "--hir2023-label-smoothing in [0, 1)", file=sys.stderr)
        return 2
    run_compare(args.out, list(range(args.seeds)), dataclasses.replace(settings, **overrides),
                workers=workers, warm_start=args.warm_start)
    return 0
