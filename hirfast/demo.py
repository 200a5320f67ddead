"""``hirfast demo``: hindsight replay against plain REINFORCE++ on a tiny model, no download, in a
world where following an instruction requires reading it.

1. The world (``hirfast.demo_model``): tasks of exactly 3 constraints whose values (end phrase,
   keyword to include or avoid, bullet count, length bound) are written in the instruction. The
   report prints the ceiling of not reading (the best constant answer's held-out ILA) and the
   oracle answers' ILA.
2. One supervised warm start on answers that follow each listed constraint with probability
   ``follow_prob`` and behave at random otherwise, on tasks of 1-3 constraints. It is checked
   before RL: own-minus-shuffled CLA (the same responses judged against their own task and against
   another task's constraints) must reach ``READING_GATE``, while all-constraint successes stay rare.
3. For every seed, two RL runs from that warm start, identical (tasks, order, sampling seeds,
   hyperparameters, rollouts) but for ``replay``: HiR, and REINFORCE++ without replay. The tokens
   each arm trained on are reported (replays add rows).
4. Evaluation on held-out tasks (instructions never trained on): ``eval_samples`` samples at T = 1
   with common random numbers across arms, and greedy; ILA on the own task, on a shuffled task (the
   control: it stays flat if what was learned depends on reading) and their gap; a paired 95%
   confidence interval over tasks for HiR minus the baseline. The verdict names a winner only when
   that interval excludes zero.

The same command on the same machine writes the same ``summary.json`` (no timings in it). Runs go
to worker processes, one thread each (a tiny model is overhead-bound).
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

__all__ = ["DemoSettings", "FULL", "QUICK", "run_demo", "add_arguments", "main", "summarize",
           "report", "evaluate_policy", "paired_interval", "READING_GATE"]

READING_GATE = 0.10  # own-minus-shuffled CLA the warm start must reach before RL


@dataclass(frozen=True)
class DemoSettings:
    """Everything the demo does; ``FULL`` and ``QUICK`` are the two presets."""

    train_tasks: int = 3000
    heldout_tasks: int = 256
    warm_tasks: int = 6000
    follow_prob: float = 0.4       # warm answers follow each listed constraint this often
    warm_steps: int = 2000
    warm_batch: int = 32
    warm_lr: float = 3e-3
    hidden_size: int = 128         # 64 did not learn to copy an end phrase in 2,000 steps; 128 did
    layers: int = 2
    intermediate_size: int = 512   # the MLP's width
    rl_steps: int = 120            # 150 took the demo over its 10 minutes on 2 cores
    tasks_per_step: int = 8
    rollouts_per_task: int = 6
    max_new_tokens: int = 64       # long warm answers take ~50 tokens
    lr: float = 5e-4
    kl_loss_coef: float = 0.2      # KL to the warm start in the loss, for both arms (0.05: HiR drifted, see README)
    curve_every: int = 40          # a held-out point for the curve every N steps
    curve_tasks: int = 64
    eval_samples: int = 4          # final evaluation: samples per held-out task at T = 1


FULL = DemoSettings()
QUICK = DemoSettings(train_tasks=200, heldout_tasks=12, warm_tasks=200, warm_steps=30,
                     warm_batch=8, rl_steps=4, tasks_per_step=2, rollouts_per_task=3,
                     max_new_tokens=24, curve_every=2, curve_tasks=6, eval_samples=2,
                     hidden_size=32, intermediate_size=128)

ARMS = ("hir", "baseline")
ARM_NAMES = {"hir": "HiR (replay)", "baseline": "REINFORCE++ (no replay)"}


# --- the world ------------------------------------------------------------------------------------

def _world(settings: DemoSettings):
    """Training, held-out and warm-start tasks (held-out instructions never appear in training)."""
    from .demo_model import demo_tasks

    train = demo_tasks(settings.train_tasks, seed=0, key_prefix="train")
    seen = {t.instruction() for t in train}
    heldout = [t for t in demo_tasks(settings.heldout_tasks * 3, seed=10_000, key_prefix="heldout")
               if t.instruction() not in seen][:settings.heldout_tasks]
    warm = demo_tasks(settings.warm_tasks, seed=20_000, key_prefix="warm", constraints=(1, 3))
    return train, heldout, warm


def derangement(n: int, seed: int = 7) -> list[int]:
    """A permutation with no fixed point: response i is judged against task ``perm[i]``."""
    if n < 2:
        return list(range(n))
    rng = random.Random(seed)
    while True:
        perm = list(range(n))
        rng.shuffle(perm)
        if all(i != p for i, p in enumerate(perm)):
            return perm


def _ila_cla(texts, tasks) -> tuple[list[float], list[float]]:
    from . import verify

    sats = verify.check(texts, [t.instruction_ids for t in tasks], [t.kwargs for t in tasks],
                        [t.instruction() for t in tasks])
    return [float(all(s)) for s in sats], [sum(s) / len(s) for s in sats]


def ceilings(heldout) -> dict:
    """The best constant answer's held-out ILA (what not reading can reach) and the oracle's."""
    from .demo_model import constant_answers, oracle_response

    best = max((statistics.fmean(_ila_cla([a] * len(heldout), heldout)[0]), a)
               for a in constant_answers())
    rng = random.Random(3)
    oracle = statistics.fmean(_ila_cla([oracle_response(rng, t) for t in heldout], heldout)[0])
    return {"constant_ila": best[0], "constant_answer": best[1], "oracle_ila": oracle}


def evaluate_policy(model, tokenizer, tasks, *, samples: int, temperature: float, seed: int,
                    max_new_tokens: int) -> dict:
    """Per held-out task, the mean ILA and CLA of ``samples`` responses judged against the task
    itself ("own") and against the task ``derangement(len(tasks))`` assigns it ("shuffled").
    Sample j of task i draws from ``(seed, i * samples + j)`` only: two models evaluated with the
    same seed share their random numbers."""
    import torch

    from .demo_model import chat_prompt_ids
    from .rollout import generate

    model.eval()
    with torch.no_grad():
        groups = generate(model, [chat_prompt_ids(tokenizer, t.instruction()) for t in tasks],
                          n=samples, max_new_tokens=max_new_tokens, temperature=temperature,
                          stop_token_ids=[tokenizer.eos_token_id], seed=seed)
    texts = [tokenizer.decode(c.token_ids, skip_special_tokens=True) for g in groups for c in g]
    perm = derangement(len(tasks))
    own = _ila_cla(texts, [t for t in tasks for _ in range(samples)])
    shuffled = _ila_cla(texts, [tasks[perm[i]] for i in range(len(tasks)) for _ in range(samples)])

    def per_task(xs):
        return [statistics.fmean(xs[i * samples:(i + 1) * samples]) for i in range(len(tasks))]

    return {"own_ila": per_task(own[0]), "own_cla": per_task(own[1]),
            "shuffled_ila": per_task(shuffled[0]), "shuffled_cla": per_task(shuffled[1])}


def _means(ev: dict) -> dict:
    return {k: statistics.fmean(v) for k, v in ev.items()}


def paired_interval(a: list[float], b: list[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired items and its normal-approximation 95% interval."""
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(d)
    half = z * statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return mean, mean - half, mean + half


# --- warm start -----------------------------------------------------------------------------------

def warm_data(settings: DemoSettings, train, heldout, warm):
    """The warm start's (instruction, answer) pairs and the world's tokenizer."""
    from .demo_model import build_tokenizer, constant_answers, sample_response

    rng = random.Random(1)
    pairs = [(t.instruction(), sample_response(rng, t, settings.follow_prob)) for t in warm]
    tokenizer = build_tokenizer([a for _, a in pairs] + constant_answers() + [
        f"<|user|>\n{t.instruction()}<|end|>\n<|assistant|>\n" for t in train + heldout + warm])
    return pairs, tokenizer


def _warm_start(settings: DemoSettings, out: str, train, heldout, warm, pool, workers: int,
                log) -> dict:
    """Build the tokenizer and the tiny model, train them on generated answers (data parallel over
    ``workers`` processes of ``pool``, or here when there is none), save both."""
    import torch

    from .demo_model import build_model

    pairs, tokenizer = warm_data(settings, train, heldout, warm)
    model = build_model(tokenizer, seed=0, hidden_size=settings.hidden_size, layers=settings.layers,
                        intermediate_size=settings.intermediate_size)
    path = os.path.join(out, "warm_start")
    model.save_pretrained(path)  # the initial model; rank 0 overwrites it with the trained one
    tokenizer.save_pretrained(path)
    world = min(workers, settings.warm_batch) if pool is not None and _distributed_ok() else 1
    job = {"path": path, "pairs": pairs, "settings": settings, "world": world}
    if world == 1:
        losses = _warm_rank(dict(job, rank=0), log=log)
    else:
        log(f"  warm start on {world} processes (data parallel: each computes a share of every "
            f"batch; one gradient all-reduce per step)")
        # Rank 0 prints its progress itself when this demo prints to the terminal; a caller's own
        # ``log`` gets the same lines once the warm start is done.
        echo = log is print
        with tempfile.TemporaryDirectory(prefix="hirfast-demo-") as tmp:
            job["rendezvous"] = os.path.join(tmp, "rendezvous")
            futures = [pool.submit(_warm_rank, dict(job, rank=r, echo=echo and r == 0))
                       for r in range(world)]
            losses = [f.result() for f in futures][0]
        every = max(1, settings.warm_steps // 4)
        for step in range(every, settings.warm_steps + 1, every) if not echo else ():
            log(f"  warm start step {step}/{settings.warm_steps}: loss "
                f"{statistics.fmean(losses[step - every:step]):.3f}")
    tail = losses[-min(20, len(losses)):]
    return {"path": path, "params": sum(p.numel() for p in model.parameters()),
            "vocab": len(tokenizer), "loss": sum(tail) / len(tail), "processes": world,
            "threads": torch.get_num_threads()}


def _distributed_ok() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


def _warm_rank(job: dict, log=None) -> list[float] | None:
    """One process of the warm start: train the saved initial model; rank 0 saves the result and
    returns the losses."""
    import torch

    from .demo_model import warm_start

    s: DemoSettings = job["settings"]
    rank, world = job["rank"], job["world"]
    if job.get("echo"):
        log = functools.partial(print, flush=True)
    if world > 1:
        import torch.distributed as dist

        # Loopback only: two processes of one machine need no other interface, and a host name
        # that does not resolve (containers) must not stop the demo.
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group("gloo", init_method="file://" + job["rendezvous"], rank=rank,
                                world_size=world)
    try:
        model, tokenizer = _worker_model(job["path"])
        losses = warm_start(model, tokenizer, job["pairs"], steps=s.warm_steps,
                            batch_size=s.warm_batch, lr=s.warm_lr, seed=0, rank=rank, world=world,
                            log_every=max(1, s.warm_steps // 4) if log else 0, log=log)
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()
    if rank != 0:
        return None
    model.save_pretrained(job["path"])
    return losses


def _warm_eval_line(ev: dict) -> str:
    reads = ev["own_cla"] - ev["shuffled_cla"] >= READING_GATE
    return (f"  warm start, held-out at T=1: own ILA {ev['own_ila']:.3f} CLA {ev['own_cla']:.3f} | "
            f"shuffled ILA {ev['shuffled_ila']:.3f} CLA {ev['shuffled_cla']:.3f}; own - shuffled CLA "
            f"{ev['own_cla'] - ev['shuffled_cla']:+.3f} ("
            + ("reads its instructions" if reads else
               f"BELOW the {READING_GATE:.2f} reading gate: RL started from a model that barely reads")
            + ")")


def _warm_eval(job: dict) -> dict:
    """The warm start's held-out evaluation (a worker job, run beside the first RL runs)."""
    s: DemoSettings = job["settings"]
    model, tokenizer = _worker_model(job["warm"])
    return _means(evaluate_policy(model, tokenizer, job["heldout"], samples=s.eval_samples,
                                  temperature=1.0, seed=123, max_new_tokens=s.max_new_tokens))


# --- one RL run -----------------------------------------------------------------------------------

def _run_arm(job: dict) -> dict:
    """One RL run (a worker process): its held-out curve, final evaluation and training tokens."""
    from .trainer import HiRTrainer

    s: DemoSettings = job["settings"]
    trainer, tokenizer, curve, history = train_run(
        job, HiRTrainer, steps=s.rl_steps, tasks_per_step=s.tasks_per_step, lr=s.lr,
        kl_loss_coef=s.kl_loss_coef, replay=job["arm"] == "hir", eval_every=s.curve_every)
    tokens = sum(round(m["tokens_per_s_train"] * m["time_train"]) for m in history)
    return {"arm": job["arm"], "seed": job["seed"], "curve": curve, "train_tokens": tokens,
            "rollouts": trainer.rollouts,
            **final_evaluation(trainer.model, tokenizer, job["heldout"], s)}


def train_run(job: dict, trainer_cls, **settings):
    """Train ``trainer_cls`` from the warm start ``job["warm"]`` on ``job["train"]`` with the
    world's shared settings and ``settings`` (the method's); a held-out curve point before training
    and every ``eval_every`` steps. Returns the trainer, tokenizer, curve and metrics history."""
    from .config import TrainConfig

    s: DemoSettings = job["settings"]
    model, tokenizer = _worker_model(job["warm"])
    heldout = job["heldout"]
    cfg = TrainConfig(
        model=job["warm"], out=job["out"], seed=job["seed"], rollouts_per_task=s.rollouts_per_task,
        max_new_tokens=s.max_new_tokens, lr_schedule="constant",
        eval_tasks=min(s.curve_tasks, len(heldout)), eval_samples=2, eval_temperature=1.0,
        progress=False, device="cpu", **settings)
    trainer = trainer_cls(cfg, model=model, tokenizer=tokenizer, tasks=job["train"],
                          eval_tasks=heldout)
    start = trainer.evaluate()
    history = trainer.train()
    curve = [[0, start["ila"], start["cla"]]] + [
        [m["rollouts"], m["eval_ila"], m["eval_cla"]] for m in history if "eval_ila" in m]
    return trainer, tokenizer, curve, history


def final_evaluation(model, tokenizer, heldout, s: DemoSettings) -> dict:
    """A trained run's held-out evaluation: ``sampled`` (``eval_samples`` at T = 1, the same
    sampling seed for every arm and run) and ``greedy``."""
    common = dict(tokenizer=tokenizer, tasks=heldout, max_new_tokens=s.max_new_tokens)
    return {"sampled": evaluate_policy(model, samples=s.eval_samples, temperature=1.0, seed=123,
                                       **common),
            "greedy": evaluate_policy(model, samples=1, temperature=0.0, seed=0, **common)}


def _worker_model(path: str):
    """A worker's model and tokenizer from ``path``, on one torch thread."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    _quiet_transformers()
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def _quiet_transformers() -> None:
    # Loading and saving a 0.2 MB model should not draw progress bars.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _run_jobs(jobs: list[dict], pool, log, fns: dict | None = None) -> list:
    """Each job is ``{"fn": name, ...}`` (``_run_arm``, ``_warm_eval`` or one of ``fns``, a name
    to a module-level function for other kinds of runs); in ``pool`` when given, else one after
    the other here. Every job but ``warm_eval`` is a run of ``job["arm"]``. Results in the order
    of ``jobs``."""
    t0 = time.time()
    fns = {"run_arm": _run_arm, "warm_eval": _warm_eval, **(fns or {})}
    runs = sum(x["fn"] != "warm_eval" for x in jobs)

    def done(i, count):
        j = jobs[i]
        if j["fn"] == "warm_eval":
            log(_warm_eval_line(results[i]))
        else:
            log(f"  run {count}/{runs} done ({j['arm']}, seed {j['seed']}) "
                f"[{time.time() - t0:.0f} s]")

    results: list = [None] * len(jobs)
    if pool is None:
        count = 0
        for i, j in enumerate(jobs):
            results[i] = fns[j["fn"]](j)
            count += j["fn"] != "warm_eval"
            done(i, count)
        return results
    from concurrent.futures import as_completed

    futures = {pool.submit(fns[j["fn"]], j): i for i, j in enumerate(jobs)}
    count = 0
    for f in as_completed(futures):
        i = futures[f]
        results[i] = f.result()
        count += jobs[i]["fn"] != "warm_eval"
        done(i, count)
    return results


# --- summary and report ---------------------------------------------------------------------------

def arm_summary(runs: list[dict]) -> dict:
    """One arm's runs (any order): per seed (ascending) the held-out means of each mode and key,
    the training tokens, and the curve averaged over seeds."""
    runs = sorted(runs, key=lambda r: r["seed"])
    points = [p[0] for p in runs[0]["curve"]]
    per_seed = {mode: [_means(r[mode]) for r in runs] for mode in ("sampled", "greedy")}
    return {
        **{f"{mode}_{k}": [m[k] for m in per_seed[mode]] for mode in per_seed
           for k in ("own_ila", "shuffled_ila", "own_cla", "shuffled_cla")},
        "train_tokens": [r["train_tokens"] for r in runs],
        "curve": [[int(x), statistics.fmean(r["curve"][i][1] for r in runs)]
                  for i, x in enumerate(points)],
    }


def per_task_means(results: list[dict], arm: str, mode: str, key: str) -> list[float]:
    """Per held-out task, ``key`` of ``mode`` averaged over ``arm``'s seeds (what the paired
    intervals compare)."""
    runs = [r for r in results if r["arm"] == arm]
    return [statistics.fmean(r[mode][key][i] for r in runs) for i in range(len(runs[0][mode][key]))]


def summarize(results: list[dict], seeds: list[int], rollouts_per_arm: int, world: dict) -> dict:
    """``summary.json``: per arm and seed the final held-out numbers, the mean curve, training
    tokens; HiR minus baseline with its paired interval over tasks; the world's ceilings."""
    arms = {arm: arm_summary([r for r in results if r["arm"] == arm]) for arm in ARMS}

    def task_means(arm: str, mode: str, key: str) -> list[float]:
        return per_task_means(results, arm, mode, key)

    comparison = {}
    for mode in ("sampled", "greedy"):
        comparison[mode] = {
            "hir_minus_baseline_own_ila": paired_interval(task_means("hir", mode, "own_ila"),
                                                          task_means("baseline", mode, "own_ila")),
            **{f"{arm}_own_minus_shuffled_ila": paired_interval(task_means(arm, mode, "own_ila"),
                                                                task_means(arm, mode, "shuffled_ila"))
               for arm in ARMS},
        }
    return {"seeds": seeds, "rollouts_per_arm": rollouts_per_arm, "world": world, "arms": arms,
            "comparison": comparison}


def _fmt_interval(t) -> str:
    return f"{t[0]:+.3f} [{t[1]:+.3f}, {t[2]:+.3f}]"


def report(summary: dict) -> str:
    """The table and the verdict, as printed."""
    arms, cmp_ = summary["arms"], summary["comparison"]
    seeds = summary["seeds"]
    lines = [f"held-out tasks, {len(seeds)} seed(s); ILA = all 3 constraints met; 'shuffled' judges "
             "the same responses against another task's constraints (the control)",
             f"{'':26s}{'own ILA (median)':>18s}{'shuffled ILA':>14s}{'greedy own':>12s}"
             f"{'greedy shuf.':>14s}{'own CLA':>10s}{'train tokens':>14s}"]
    for arm in ARMS:
        a = arms[arm]
        lines.append(f"{ARM_NAMES[arm]:26s}{statistics.median(a['sampled_own_ila']):>18.3f}"
                     f"{statistics.median(a['sampled_shuffled_ila']):>14.3f}"
                     f"{statistics.median(a['greedy_own_ila']):>12.3f}"
                     f"{statistics.median(a['greedy_shuffled_ila']):>14.3f}"
                     f"{statistics.median(a['sampled_own_cla']):>10.3f}"
                     f"{statistics.fmean(a['train_tokens']):>14,.0f}")
    per_seed = "  ".join(f"seed {s}: {h:.3f} vs {b:.3f}" for s, h, b in
                         zip(seeds, arms["hir"]["sampled_own_ila"], arms["baseline"]["sampled_own_ila"]))
    lines.append(f"own ILA per seed at T=1 (HiR vs baseline): {per_seed}")
    for mode in ("sampled", "greedy"):
        c = cmp_[mode]
        lines.append(f"{mode + ':':9s} HiR - baseline own ILA {_fmt_interval(c['hir_minus_baseline_own_ila'])}; "
                     f"own - shuffled: HiR {_fmt_interval(c['hir_own_minus_shuffled_ila'])}, "
                     f"baseline {_fmt_interval(c['baseline_own_minus_shuffled_ila'])}  (95% CI over tasks)")
    d, low, high = cmp_["sampled"]["hir_minus_baseline_own_ila"]
    if low > 0:
        verdict = (f"verdict: HiR wins: held-out own ILA {d:+.3f} over the baseline at equal rollouts "
                   f"(95% CI [{low:+.3f}, {high:+.3f}] excludes 0).")
    elif high < 0:
        verdict = (f"verdict: the baseline wins: HiR's held-out own ILA is {d:+.3f} below it "
                   f"(95% CI [{low:+.3f}, {high:+.3f}] excludes 0); replay does NOT help here.")
    else:
        verdict = (f"verdict: no winner: HiR - baseline own ILA {d:+.3f}, 95% CI [{low:+.3f}, "
                   f"{high:+.3f}] includes 0; replay's edge is not shown at this budget.")
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


# --- the whole demo -------------------------------------------------------------------------------

@contextlib.contextmanager
def _pool(workers: int):
    """A pool of ``workers`` fresh interpreters (spawn: never a fork of a process with torch
    threads), or None for ``workers <= 1`` (everything runs here)."""
    if workers <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def setup_world(out: str, settings: DemoSettings):
    """The demo's world written under ``out``: training, held-out and warm-start tasks, and the
    held-out ceilings (``ceilings``). Raises RuntimeError when the checker lacks a demo id."""
    from . import verify
    from .data import write_tasks
    from .demo_model import DEMO_IDS

    _quiet_transformers()
    missing = [i for i in DEMO_IDS if i not in set(verify.instruction_ids())]
    if missing:
        raise RuntimeError(f"the constraint checker lacks the demo's ids {missing}")
    os.makedirs(out, exist_ok=True)
    train, heldout, warm = _world(settings)
    write_tasks(os.path.join(out, "train_tasks.jsonl"), train)
    write_tasks(os.path.join(out, "heldout_tasks.jsonl"), heldout)
    return train, heldout, warm, ceilings(heldout)


def run_demo(out: str, seeds: list[int], settings: DemoSettings = FULL, *, workers: int = 2,
             log=print) -> dict:
    """Run the whole demo into ``out``; return the summary (also written to summary.json)."""
    import torch

    from .demo_model import DEMO_IDS

    t0 = time.time()
    train, heldout, warm, world = setup_world(out, settings)
    log(f"hirfast demo: {len(DEMO_IDS)} constraint types, 3 per task, values written in the "
        f"instruction; {len(train)} training tasks, {len(heldout)} held-out tasks")
    log(f"  not reading: the best constant answer meets all 3 on {world['constant_ila']:.3f} of the "
        f"held-out tasks; the oracle answers on {world['oracle_ila']:.3f}")
    torch.manual_seed(0)
    # One thread per process: on a shared 2-core machine two torch threads spent most of the warm
    # start waiting on each other (500 steps took 18 min against 3.5 min on one thread).
    torch.set_num_threads(1)
    per_arm = settings.rl_steps * settings.tasks_per_step * settings.rollouts_per_task
    with _pool(workers) as pool:
        info = _warm_start(settings, out, train, heldout, warm, pool, workers, log)
        log(f"warm start: tiny Llama, {info['params']:,} parameters, vocabulary {info['vocab']}; "
            f"{settings.warm_steps} supervised steps (final loss {info['loss']:.2f}) "
            f"[{time.time() - t0:.0f} s]")
        log(f"RL: {settings.rl_steps} steps x {settings.tasks_per_step} tasks x "
            f"{settings.rollouts_per_task} rollouts = {per_arm:,} rollouts per run; "
            f"{len(seeds)} seed(s) x {{HiR, REINFORCE++ without replay}}, identical otherwise")
        # The warm start's evaluation goes first and runs beside the first RL runs.
        jobs = [{"fn": "warm_eval", "settings": settings, "warm": info["path"], "heldout": heldout}]
        jobs += [{"fn": "run_arm", "arm": arm, "seed": seed, "settings": settings,
                  "warm": info["path"], "out": os.path.join(out, "runs", f"{arm}-seed{seed}"),
                  "train": train, "heldout": heldout} for seed in seeds for arm in ARMS]
        results = _run_jobs(jobs, pool, log)
    ev, results = results[0], results[1:]
    reads = ev["own_cla"] - ev["shuffled_cla"] >= READING_GATE
    world.update({"warm_start": ev, "warm_start_reads": reads,
                  "settings": asdict(settings)})
    summary = summarize(results, list(seeds), per_arm, world)
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    plot_curves(results, os.path.join(out, "curves.png"))
    log("")
    log(report(summary))
    log(f"\nwrote {os.path.join(out, 'summary.json')}, {os.path.join(out, 'curves.png')} and "
        f"runs/*/metrics.jsonl  [{time.time() - t0:.0f} s]")
    return summary


def add_arguments(parser) -> None:
    add_world_arguments(parser, "hirfast-out/demo", seeds="each runs both arms",
                        quick="a reduced setting that finishes in well under a minute (for tests)")


def add_world_arguments(parser, out: str, *, seeds: str, quick: str) -> None:
    """``--out``, ``--seeds``, ``--quick`` and ``--workers``: the demo's and the commands that run
    on its world."""
    parser.add_argument("--out", default=out, metavar="DIR", help=f"output directory (default: {out})")
    parser.add_argument("--seeds", type=int, default=3, metavar="N",
                        help=f"how many seeds (default 3); {seeds}")
    parser.add_argument("--quick", action="store_true", help=quick)
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
