"""The HiR training loop (``HiRTrainer``) and the ``hirfast train`` command.

One step, as ``HIR_METHOD.md`` defines it:

1. sample B tasks; roll out m responses each (temperature 1 by default);
2. verify every constraint of every response with the C++ checker (HIR-16K type4 criteria: the
   sandbox and the LLM judge, ``hirfast.rewards``); reward 1 iff all hold (``reward: dense``
   gives the share met instead). The judge's requests and the sandbox's runs are started first;
   the reference model's log-probs of the responses, which need no reward, are computed while
   they run, and the step waits for verdicts only where rewards and replay selection need them
   (``time_judge_wait``);
3. replay (unless ``replay: off``): select failed responses that met at least one constraint
   (``replay_selection: published``, the default: the top ``num_replay`` of the whole batch by
   ``lambda_s * CLA + token-mean entropy``; ``jaccard``: per task), rewrite each one's instruction
   to the constraints it met, verify it again under ``x'`` (dropped and counted if it fails) and add
   ``(x', y)`` with reward 1 (``hirfast.replay``);
4. advantages over originals and replays (REINFORCE++ by default, ``hirfast.advantages``);
5. the PPO clipped surrogate, token-mean, with optional KL-in-loss and entropy terms; AdamW with
   linear warm-up then cosine decay, global-norm gradient clipping.

log pi_old and log pi_ref of each row are as ``hirfast.rl_loss`` says: originals use the rollout's
untruncated log-probs (on-policy ``pi.detach()`` in the loss with one optimizer step per rollout),
replays those of ``y`` under the original instruction (``replay_old_logprobs: original``, as
published) or no-grad forwards under ``x'``; a replay's pi_old always reaches the loss, so its
ratio and clip are real. ``replay: off`` is the plain baseline with every other setting identical.

Checkpoints (every ``save_every`` steps and at the end) hold the model in Hugging Face format
(safetensors), the tokenizer, and ``trainer_state.pt`` (optimizer, scheduler, RNG states, data
position, step). They are written to a temporary directory and renamed into place, so a killed run
never leaves a half-written checkpoint; ``resume: true`` continues from the latest one. Rollout
sampling is seeded from ``(seed, step)``, so on the CPU a resumed run's metrics equal an
uninterrupted run's.

The parts: ``hirfast.rollout.generate`` samples (one prefill per prompt, log-probs recorded),
``hirfast.verify.check`` checks, ``hirfast.packing`` packs originals and replays into
padding-free micro-batches (shared prompts computed once) and ``hirfast.ops.policy_loss`` computes
the loss from the final hidden states without materializing the logits.
"""
from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import torch

from . import checkpoint, models, rewards, verify
from .checkpoint import STATE_FILE, latest as latest_checkpoint
from .advantages import compute_advantages
from .config import TrainConfig, add_config_arguments, config_from_args
from .constraints import Task, generate_tasks
from .data import TaskSampler, load_tasks
from .packing import ModelFlops, lm_head_weight, pack, response_hidden, score
from .rl_loss import (Parts, disable_dropout, micro_batch_loss, reference_source, row_logprobs,
                      token_kl)
from .rollout import generate
from .replay import REPLAY_COUNTS, integrity, jaccard_diversity, replay_batch, replay_lambda

__all__ = ["HiRTrainer", "add_arguments", "main", "latest_checkpoint"]

log = logging.getLogger("hirfast.trainer")

# Replay importance weights pi(y_t|x') / pi(y_t|x) are truncated here (as V-trace truncates its
# rho): one token the rewrite made far likelier must not dominate the batch.
IMPORTANCE_CAP = 2.0


@dataclass
class _Row:
    prompt: list[int]
    response: list[int]
    reward: float
    group: int
    is_replay: bool
    # untruncated log-probs of the response under the original instruction x, from the rollout
    rollout_logprobs: torch.Tensor
    source: "_Row | None" = None  # a replay's original row (same response, under x)
    ref: torch.Tensor | None = None  # log pi_ref of the response, once scored


def _step_seed(seed: int, step: int, stream: int = 0) -> int:
    return (seed * 1_000_003 + step * 7919 + stream * 104_729) % (2 ** 31 - 1)


def _warmup_cosine(warmup: int, total: int, schedule: str, min_ratio: float) -> Callable[[int], float]:
    def factor(i: int) -> float:
        if warmup and i < warmup:
            return (i + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (i - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class HiRTrainer:
    """Train a causal LM with Hindsight instruction Replay (see the module docstring).

    Args:
        config: the run's settings.
        model, tokenizer: a Hugging Face causal LM and its tokenizer; loaded from
            ``config.model`` / ``config.tokenizer`` when not given.
        tasks: training tasks; by default read from ``config.data`` or generated.
        eval_tasks: held-out tasks for ``eval_every``; by default from ``config.eval_data`` or
            generated with another seed.
        verifier: ``(responses, instruction_ids, kwargs, prompts) -> sat`` lists; default
            :func:`hirfast.verify.check` (strict, or loose with ``loose_verify``).
        integrity_fn, diversity_fn: the replay scores (defaults: ``F_int`` and the Jaccard
            ``F_div`` of ``hirfast.replay``).

    ``overlap_verify`` (class attribute, default True): the reference scores each step's
    originals while the sandbox's and the judge's verdicts are being computed; False waits for
    the verdicts first (the blocking order: the same computations, so the same results).
    """

    overlap_verify = True

    def __init__(self, config: TrainConfig, *, model=None, tokenizer=None,
                 tasks: Sequence[Task] | None = None, eval_tasks: Sequence[Task] | None = None,
                 verifier: Callable | None = None, integrity_fn=integrity,
                 diversity_fn=jaccard_diversity):
        self.cfg = config.validate()
        if model is None and not config.model:
            raise ValueError("no model: give --model PATH_OR_NAME (or model: in the config)")
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                                   if config.device == "auto" else config.device)
        on_gpu = self.device.type == "cuda"
        if on_gpu and self.device.index is not None:
            torch.cuda.set_device(self.device)  # Triton launches and CUDA graphs use the current GPU
        self.autocast = config.bf16 == "on" or (config.bf16 == "auto" and on_gpu)
        if self.autocast and not on_gpu:
            raise ValueError("bf16 = on needs a CUDA device; use bf16: off (or auto) on the CPU")

        if model is None:
            model = models.load_causal_lm(config.model, dtype=torch.float32)
        if tokenizer is None:
            tokenizer = models.load_tokenizer(config.model, config.tokenizer)
        if config.chat_template:
            tokenizer.chat_template = config.chat_template
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError(f"the tokenizer of {config.model or 'the model'} has no chat template; "
                             "set chat_template in the config")
        self.model, self.tokenizer = model.to(self.device), tokenizer
        if config.gradient_checkpointing == "on" or (config.gradient_checkpointing == "auto" and on_gpu):
            self.model.gradient_checkpointing_enable()
        if config.disable_dropout and disable_dropout(self.model):
            log.info("dropout set to 0 in the policy (disable_dropout: true)")
        if config.kl_loss_coef > 0 and config.kl_estimator == "k1":
            log.warning("kl_estimator = k1 in the loss has zero expected gradient: it adds noise, "
                        "not regularization (k2 gives the gradient of KL(pi||ref))")
        stops = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        stops.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.stop_ids = sorted(s for s in stops if s is not None)
        if not self.stop_ids:
            raise ValueError("the tokenizer has no eos token: generation could not stop")

        # The rollout engine and the no-grad scorers run in a model's own dtype. With bf16 they
        # get a bf16 copy of the policy, refreshed after every optimizer step (the fp32 weights
        # stay the optimizer's); the frozen reference is kept in bf16 outright.
        infer_dtype = torch.bfloat16 if self.autocast else torch.float32
        self.infer_model = self.model
        if self.autocast:
            self.infer_model = copy.deepcopy(self.model).to(infer_dtype).eval().requires_grad_(False)
        self.reference = None
        self.reference_source = reference_source(config.model, config.ref_model, STATE_FILE)
        if config.kl_coef > 0 or config.kl_loss_coef > 0:
            if self.reference_source != config.model:
                self.reference = models.load_causal_lm(self.reference_source, dtype=torch.float32)
            else:  # the initial model, before any checkpoint is loaded into the policy
                self.reference = copy.deepcopy(self.model)
            self.reference.to(self.device, infer_dtype).eval().requires_grad_(False)
            log.info("reference model: %s", self.reference_source or "the initial policy")

        # Engine ids go to the C++ checker; HIR-16K type4 criteria to the sandbox / the judge.
        self.verifier = verifier or rewards.build_verifier(
            partial(verify.check, loose=config.loose_verify, num_threads=config.verify_threads),
            **rewards.options_from_config(config))
        self.integrity_fn, self.diversity_fn = integrity_fn, diversity_fn
        self._prompt_cache: dict[str, list[int]] = {}

        self.tasks = self._fit_prompts(list(tasks) if tasks is not None else self._load_tasks(), "training")
        self.eval_tasks = None
        if config.eval_every or eval_tasks is not None:
            self.eval_tasks = self._fit_prompts(
                list(eval_tasks) if eval_tasks is not None else self._load_eval_tasks(), "held-out")
        self.sampler = TaskSampler(self.tasks, seed=config.seed)

        total_updates = config.steps * config.mini_batches
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=config.lr,
            betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps,
            weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _warmup_cosine(config.warmup_steps, total_updates, config.lr_schedule,
                                           config.min_lr_ratio))
        self.step_index = 0
        self.rollouts = 0
        self.history: list[dict] = []

    # --- data ---------------------------------------------------------------------------------

    def _load_tasks(self) -> list[Task]:
        if self.cfg.data:
            tasks, report = load_tasks(self.cfg.data, strict=self.cfg.strict_data,
                                       **rewards.load_options(self.cfg))
            if not tasks:
                raise ValueError(f"{self.cfg.data}: no usable rows ({report.summary()})")
            return tasks
        return generate_tasks(self.cfg.synthetic_tasks, seed=self.cfg.seed,
                              available_ids=verify.instruction_ids())

    def _load_eval_tasks(self) -> list[Task]:
        if self.cfg.eval_data:
            tasks, _ = load_tasks(self.cfg.eval_data, strict=self.cfg.strict_data,
                                  **rewards.load_options(self.cfg))
        else:
            seen = {t.instruction() for t in self.tasks}
            tasks = [t for t in generate_tasks(self.cfg.eval_tasks * 2, seed=self.cfg.seed + 1,
                                               available_ids=verify.instruction_ids(),
                                               key_prefix="heldout")
                     if t.instruction() not in seen]
        return tasks[:self.cfg.eval_tasks]

    def _fit_prompts(self, tasks: list[Task], what: str) -> list[Task]:
        kept = [t for t in tasks if len(self.prompt_ids(t)) <= self.cfg.max_prompt_tokens]
        if len(kept) < len(tasks):
            log.warning("skipped %d %s tasks longer than max_prompt_tokens = %d",
                        len(tasks) - len(kept), what, self.cfg.max_prompt_tokens)
        if not kept:
            raise ValueError(f"no {what} task fits in max_prompt_tokens = {self.cfg.max_prompt_tokens}")
        return kept

    def prompt_ids(self, task: Task) -> list[int]:
        """Token ids of the task's instruction inside the chat template (cached)."""
        text = task.instruction()
        ids = self._prompt_cache.get(text)
        if ids is None:
            chat = self.tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                      add_generation_prompt=True, tokenize=False)
            ids = self.tokenizer(chat, add_special_tokens=False)["input_ids"]
            self._prompt_cache[text] = ids
        return ids

    # --- phases -------------------------------------------------------------------------------

    def _autocast(self):
        if self.autocast:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _rollout(self, tasks: Sequence[Task], n: int, temperature: float, seed: int):
        self.infer_model.eval()
        with torch.no_grad():
            return generate(self.infer_model, [self.prompt_ids(t) for t in tasks], n=n,
                            max_new_tokens=self.cfg.max_new_tokens, temperature=temperature,
                            top_p=self.cfg.top_p, top_k=self.cfg.top_k,
                            stop_token_ids=self.stop_ids, seed=seed)

    def _start_verify(self, tasks: Sequence[Task], groups) -> tuple[list[str], rewards.Pending]:
        """Decode every response and start checking it: the engine checks now, the sandbox's and
        the judge's verdicts arrive in their threads (``rewards.start``). Returns the texts and
        the flat verdicts to come."""
        texts, ids, kwargs, prompts = [], [], [], []
        for task, group in zip(tasks, groups):
            for c in group:
                texts.append(self.tokenizer.decode(c.token_ids, skip_special_tokens=True))
                ids.append(task.instruction_ids)
                kwargs.append(task.kwargs)
                prompts.append(task.instruction())
        return texts, rewards.start(self.verifier, texts, ids, kwargs, prompts)

    @staticmethod
    def _by_task(flat: list, groups) -> list[list]:
        out, i = [], 0
        for group in groups:
            out.append(flat[i:i + len(group)])
            i += len(group)
        return out

    def _verify(self, tasks: Sequence[Task], groups, texts_out: list | None = None
                ) -> list[list[list[bool]]]:
        """sat of every response, grouped by task (decoding counts as part of verifying); the
        decoded texts are appended to ``texts_out`` when given."""
        texts, pending = self._start_verify(tasks, groups)
        if texts_out is not None:
            texts_out.extend(texts)
        return self._by_task(pending.result(), groups)

    def evaluate(self, tasks: Sequence[Task] | None = None, *, samples: int | None = None,
                 temperature: float | None = None, seed: int | None = None) -> dict:
        """ILA (all constraints met) and CLA (share of constraints met) on held-out tasks."""
        tasks = self.eval_tasks if tasks is None else tasks
        if not tasks:
            raise ValueError("no held-out tasks to evaluate")
        samples = samples or self.cfg.eval_samples
        temperature = self.cfg.eval_temperature if temperature is None else temperature
        groups = self._rollout(tasks, samples, temperature,
                               _step_seed(self.cfg.seed if seed is None else seed, 0, stream=1))
        sats = self._verify(tasks, groups)
        flat = [s for g in sats for s in g]
        return {"ila": sum(all(s) for s in flat) / len(flat),
                "cla": sum(map(sum, flat)) / sum(map(len, flat))}

    def _refresh_infer_model(self) -> None:
        if self.infer_model is not self.model:
            with torch.no_grad():
                for copy_, param in zip(self.infer_model.parameters(), self.model.parameters()):
                    copy_.copy_(param)

    def _reward(self, sat: Sequence[bool]) -> float:
        if self.cfg.reward == "dense":
            return sum(sat) / len(sat)
        return float(all(sat))

    def _recheck_verifier(self) -> Callable:
        # MixedVerifier.recheck re-checks engine ids and keeps the dataset criteria's verdicts
        # from x (no second sandbox run or judge request per replay); a plain verifier checks all.
        return getattr(self.verifier, "recheck", self.verifier)

    def _score_reference(self, rows: Sequence[_Row]) -> float:
        """log pi_ref of each row's response (``row.ref``; ``row_logprobs`` then keeps it), for
        the rows with a response and no ``ref`` yet; returns the seconds it took."""
        todo = [r for r in rows if r.response and r.ref is None]
        if self.reference is None or not todo:
            return 0.0
        _sync(self.device)
        t0 = time.perf_counter()
        for r, lp in zip(todo, self._score(self.reference, todo)):
            r.ref = lp
        _sync(self.device)
        return time.perf_counter() - t0

    def _score(self, model, rows: Sequence[_Row]) -> list[torch.Tensor]:
        model.eval()
        with torch.no_grad():
            lps = score(model, [r.prompt for r in rows], [r.response for r in rows],
                        temperature=self.cfg.temperature,
                        max_tokens_per_batch=self.cfg.max_tokens_per_micro_batch)
        return [lp.float().cpu() for lp in lps]

    def step(self) -> dict:
        """One training step (rollout, verify, replay, update); returns its metrics."""
        cfg, dev = self.cfg, self.device
        s = self.step_index
        times = {}

        _sync(dev)
        t0 = time.perf_counter()
        tasks = self.sampler.next_batch(cfg.tasks_per_step)
        groups = self._rollout(tasks, cfg.rollouts_per_task, cfg.temperature, _step_seed(cfg.seed, s))
        _sync(dev)
        times["rollout"] = time.perf_counter() - t0
        gen_tokens = groups.stats.generated_tokens

        t0 = time.perf_counter()
        texts, pending = self._start_verify(tasks, groups)
        rows = [_Row(self.prompt_ids(task), c.token_ids, 0.0, t, False, c.full_logprobs)
                for t, (task, group) in enumerate(zip(tasks, groups)) for c in group]
        times["verify"] = time.perf_counter() - t0
        # While the sandbox and the judge work, the reference scores the originals (no reward
        # needed; timed as part of the update it belongs to). overlap_verify = False waits first.
        times["train"] = self._score_reference(rows) if self.overlap_verify else 0.0
        flat = pending.result()
        times["judge_wait"] = pending.waited_s
        times["verify"] += pending.waited_s
        times["train"] += self._score_reference(rows)  # nothing left to score when overlapped
        for row, sat in zip(rows, flat):
            row.reward = self._reward(sat)
        sats = self._by_task(flat, groups)

        t0 = time.perf_counter()
        lam = replay_lambda(s, cfg.replay_lambda0, cfg.replay_eta)
        replays, replay_info = [], dict.fromkeys(REPLAY_COUNTS, 0)
        if cfg.replay:
            replays, replay_info = replay_batch(
                tasks, groups, texts, sats, lam=lam, selection=cfg.replay_selection,
                num_replay=cfg.replays_per_step, k=cfg.replay_k,
                max_per_task=cfg.replay_max_per_task, replay_truncated=cfg.replay_truncated,
                verifier=self._recheck_verifier() if cfg.replay_recheck else None,
                integrity_fn=self.integrity_fn, diversity_fn=self.diversity_fn)
        # A replay's response is its source's id list (never re-tokenized); it keeps the source's
        # rollout log-probs of y under x (its pi_old with replay_old_logprobs: original).
        per_task = len(groups[0]) if groups else 0
        rows += [_Row(self.prompt_ids(r.task), rows[r.task_index * per_task + r.response].response,
                      1.0, r.task_index, True, rows[r.task_index * per_task + r.response].rollout_logprobs,
                      source=rows[r.task_index * per_task + r.response])
                 for r in replays]
        times["replay"] = time.perf_counter() - t0

        _sync(dev)
        t0 = time.perf_counter()
        rows = [r for r in rows if r.response]
        train_metrics = self._update(rows, s)
        _sync(dev)
        times["train"] += time.perf_counter() - t0

        self.step_index += 1
        self.rollouts += sum(len(g) for g in groups)
        flat = [sat for task_sats in sats for sat in task_sats]
        originals = len(flat)
        resp_tokens = sum(len(c.token_ids) for g in groups for c in g)
        train_tokens = sum(len(r.prompt) + len(r.response) for r in rows)
        metrics = {
            "step": self.step_index,
            "rollouts": self.rollouts,
            "ila": sum(all(x) for x in flat) / originals,
            "cla": sum(map(sum, flat)) / sum(map(len, flat)),
            "reward_mean": sum(self._reward(x) for x in flat) / originals,
            "replay_count": len(replays),
            "replay_ratio": len(replays) / originals,
            **replay_info,
            "lambda": lam,
            "zero_reward_groups": sum(all(self._reward(x) == 0 for x in g) for g in sats) / len(sats),
            "response_length": resp_tokens / originals,
            "stopped": sum(c.finish_reason == "stop" for g in groups for c in g) / originals,
            **train_metrics,
            "lr": self.scheduler.get_last_lr()[0],
            "tokens_per_s_rollout": gen_tokens / max(times["rollout"], 1e-9),
            "tokens_per_s_verify": resp_tokens / max(times["verify"], 1e-9),
            "tokens_per_s_replay": resp_tokens / max(times["replay"], 1e-9),
            "tokens_per_s_train": train_tokens / max(times["train"], 1e-9),
            **{f"time_{k}": v for k, v in times.items()},
            **(self.verifier.metrics() if hasattr(self.verifier, "metrics") else {}),
        }
        return metrics

    def _update(self, rows: list[_Row], step: int) -> dict:
        cfg, dev = self.cfg, self.device
        n = len(rows)
        old, ref, kl_old = row_logprobs(
            rows, replay_old_logprobs=cfg.replay_old_logprobs, mini_batches=cfg.mini_batches,
            score_policy=partial(self._score, self.infer_model),
            score_reference=None if self.reference is None else partial(self._score, self.reference))
        replay_idx = [i for i, r in enumerate(rows) if r.is_replay]

        width = max(len(r.response) for r in rows)
        mask = torch.zeros(n, width, dtype=torch.bool)
        for i, r in enumerate(rows):
            mask[i, :len(r.response)] = True
        kl_tokens = None
        if cfg.kl_coef > 0:
            kl_tokens = torch.zeros(n, width)
            for i in range(n):
                kl_tokens[i, :len(rows[i].response)] = token_kl(ref[i], kl_old[i], cfg.kl_estimator)
        adv = compute_advantages(cfg.advantage, torch.tensor([r.reward for r in rows]),
                                 [r.group for r in rows], mask, kl=kl_tokens, kl_coef=cfg.kl_coef)
        advantages = [adv[i, :len(r.response)] for i, r in enumerate(rows)]
        if cfg.replay_importance:  # (replay_old_logprobs: rewritten) pi_old(y|x') / pi_old(y|x)
            for i in replay_idx:
                weight = torch.exp(old[i] - rows[i].rollout_logprobs).clamp(max=IMPORTANCE_CAP)
                advantages[i] = advantages[i] * weight

        # Mini-batches are whole tasks (a task's originals and replays stay together).
        task_ids = sorted({r.group for r in rows})
        chunks = [set(task_ids[k::cfg.mini_batches]) for k in range(cfg.mini_batches)]
        sums = {"loss": 0.0, "grad_norm": 0.0}
        parts = Parts()
        head = lm_head_weight(self.model)
        cost_weight = ModelFlops.from_config(self.model.config).attention_cost_weight
        self.model.train()
        for chunk in chunks:
            members = [i for i, r in enumerate(rows) if r.group in chunk]
            tokens_total = sum(len(rows[i].response) for i in members)
            self.optimizer.zero_grad(set_to_none=True)
            for batch in pack([rows[i].prompt for i in members], [rows[i].response for i in members],
                              max_tokens_per_batch=cfg.max_tokens_per_micro_batch,
                              attention_cost_weight=cost_weight):
                batch = batch.to(dev)
                idx = [members[j] for j in batch.rows]
                with self._autocast():
                    hidden = response_hidden(self.model, batch)
                weight = head
                if self.autocast:  # the lm_head matmul in bf16, as autocast would run it
                    hidden, weight = hidden.to(torch.bfloat16), head.to(torch.bfloat16)
                loss = micro_batch_loss(
                    hidden, weight, batch.response_targets, batch.response_lengths,
                    [rows[i].is_replay for i in idx], [advantages[i] for i in idx],
                    [old[i] for i in idx], None if ref is None else [ref[i] for i in idx],
                    tokens_total=tokens_total, rows_total=len(members), sums=parts,
                    clip_low=cfg.clip_low, clip_high=cfg.clip_high, kl_coef=cfg.kl_loss_coef,
                    kl_estimator=cfg.kl_estimator, entropy_coef=cfg.entropy_coef,
                    loss_agg=cfg.loss_agg, temperature=cfg.temperature)
                loss.backward()
                sums["loss"] += float(loss.detach()) / len(chunks)
            params = [p for p in self.model.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            sums["grad_norm"] += float(norm) / len(chunks)
            self.optimizer.step()
            self.scheduler.step()
        self._refresh_infer_model()
        everything = parts.original.tokens + parts.replay.tokens
        for key, name in (("clip_fraction", "clipped"), ("entropy", "entropy"), ("kl", "kl"),
                          ("ratio_mean", "ratio")):
            sums[key] = (getattr(parts.original, name) + getattr(parts.replay, name)) / everything
        sums["replay_ratio_mean"] = parts.replay.mean("ratio")
        sums["replay_clip_fraction"] = parts.replay.mean("clipped")
        if ref is None:
            sums["kl"] = None
        return sums

    # --- the loop, checkpoints, metrics ----------------------------------------------------------

    def train(self) -> list[dict]:
        """Run to ``config.steps`` (from the latest checkpoint with ``resume``); return metrics."""
        cfg = self.cfg
        os.makedirs(cfg.out, exist_ok=True)
        if cfg.resume:
            self.load_checkpoint()
        with open(os.path.join(cfg.out, "config.yaml"), "w", encoding="utf-8") as fh:
            import yaml
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
        metrics_path = os.path.join(cfg.out, "metrics.jsonl")
        checkpoint.truncate_metrics(metrics_path, self.step_index)
        writer = _TensorBoard(os.path.join(cfg.out, "tensorboard")) if cfg.tensorboard else None
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=self.step_index, disable=not cfg.progress,
                   desc="hirfast train", unit="step", file=sys.stderr, dynamic_ncols=True)
        try:
            with open(metrics_path, "a", encoding="utf-8") as out:
                while self.step_index < cfg.steps:
                    metrics = self.step()
                    last = self.step_index == cfg.steps
                    if self.eval_tasks is not None and cfg.eval_every and (
                            self.step_index % cfg.eval_every == 0 or last):
                        ev = self.evaluate()
                        metrics.update({"eval_ila": ev["ila"], "eval_cla": ev["cla"]})
                    self.history.append(metrics)
                    out.write(json.dumps(metrics) + "\n")
                    out.flush()
                    if writer:
                        writer.log(metrics)
                    bar.update(1)
                    bar.set_postfix(ila=f"{metrics['ila']:.2f}", cla=f"{metrics['cla']:.2f}",
                                    replays=metrics["replay_count"])
                    if last or (cfg.save_every and self.step_index % cfg.save_every == 0):
                        self.save_checkpoint()
        finally:
            bar.close()
            if writer:
                writer.close()
        return self.history

    def save_checkpoint(self) -> str:
        """Write ``out/checkpoints/step-NNNNNNNN`` atomically (``hirfast.checkpoint``)."""
        return checkpoint.save(self)

    def load_checkpoint(self, path: str | None = None) -> bool:
        """Restore from ``path`` or the latest complete checkpoint in ``out``; False if none."""
        return checkpoint.load(self, path)

    def _extra_state(self) -> dict:
        """An algorithm's own state for its checkpoints (plain lists, dicts, numbers, strings)."""
        return {}

    def _load_extra_state(self, state: dict, path: str) -> None:
        """Restore what ``_extra_state`` saved in the checkpoint at ``path``."""


class _TensorBoard:
    def __init__(self, logdir: str):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise RuntimeError("tensorboard: true needs the tensorboard package "
                               "(pip install 'hirfast[tensorboard]')") from e
        self.writer = SummaryWriter(logdir)

    def log(self, metrics: dict) -> None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and k != "step":
                self.writer.add_scalar(k, v, metrics["step"])

    def close(self) -> None:
        self.writer.close()


# ---------------------------------------------------------------------------------------------
# `hirfast train`

def add_arguments(parser) -> None:
    add_config_arguments(parser)


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # checkpoint writes would draw bars under ours
    try:
        cfg = config_from_args(args)
        if cfg.algorithm == "hir2023":
            from .hir2023_train import Hir2023Trainer
            trainer = Hir2023Trainer(cfg)
        else:
            trainer = HiRTrainer(cfg)
    except (ValueError, OSError) as e:
        print(f"hirfast train: {e}", file=sys.stderr)
        return 2
    history = trainer.train()
    if history:
        last = history[-1]
        print(json.dumps({k: last[k] for k in ("step", "rollouts", "ila", "cla") if k in last}))
    return 0
