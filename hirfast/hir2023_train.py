"""``algorithm: hir2023``: the iteration loop of HIR 2023 on top of ``HiRTrainer``'s parts.

One iteration (one ``step`` of ``hirfast train``), as ``HIR_METHOD.md`` describes the seed's code:

1. sample ``tasks_per_step`` tasks and ``rollouts_per_task`` outputs each with the current model at
   ``temperature`` (1 by default), through ``hirfast.rollout`` (``HiRTrainer._rollout``);
2. relabel every output in hindsight (``hirfast.hir2023``): answer tasks by exact match against
   the target, constraint tasks by the C++ checker (``HiRTrainer._verify``);
3. append them to the sample store, which keeps every iteration's samples;
4. train ``hir2023_epochs`` epochs over the whole store in batches of ``hir2023_batch_size``
   samples, one AdamW step per batch, on the HIR 2023 loss, each batch's rows (positive and
   contrast prompts) packed into padding-free micro-batches (``hirfast.packing``).

A batch larger than one micro-batch is trained in two passes: a no-grad pass gives every row's
token sums, the loss and its gradient with respect to those sums are computed from them, then each
micro-batch is recomputed with grad and back-propagates ``sum(grad * sums)``: the same gradient as
one pass over the whole batch, with one micro-batch's activations alive at a time.

Model loading, tokenization, rollout, verification, the training loop, metrics and checkpoints
are ``HiRTrainer``'s. The learning rate is constant after ``warmup_steps`` (the seed's schedule).
Checkpoints hold the sample store too, so ``resume`` continues where the run stopped: on the CPU a
resumed run's models and metrics equal an uninterrupted run's.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from .hir2023 import (AnswerTask, Example, Sample, hir2023_loss, packed_stats, relabel_answer,
                      relabel_constraints, sub_output, whole_output)
from .packing import ModelFlops, lm_head_weight, pack
from .trainer import HiRTrainer, _step_seed, _sync

__all__ = ["Hir2023Trainer", "load_answer_tasks", "is_answer_data"]

log = logging.getLogger("hirfast.hir2023")


@dataclass(frozen=True)
class _Text:
    """A bare user message, so that ``HiRTrainer.prompt_ids`` (and its cache) can template it."""

    text: str

    def instruction(self) -> str:
        return self.text


def is_answer_data(data: str | None) -> bool:
    """``bbh``, ``bbh:task,...``, or a JSONL file whose first row has ``input`` and ``target``."""
    if not data:
        return False
    if data == "bbh" or data.startswith("bbh:"):
        return True
    if os.path.isfile(data):
        with open(data, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        return False
                    return isinstance(row, dict) and "input" in row and "target" in row
    return False


def load_answer_tasks(data: str, split: str) -> list[AnswerTask]:
    """Answer tasks from BIG-Bench Hard (``bbh[:task,...]``, the ``split`` "train" or "heldout")
    or from a JSONL file of ``{"input", "target"}`` rows (all rows; ``split`` is ignored)."""
    from . import bbh

    if data == "bbh" or data.startswith("bbh:"):
        return bbh.load_tasks(bbh.parse_tasks(data), split=split)
    tasks = []
    with open(data, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{data}:{line_no}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{data}:{line_no}: expected an object with 'input' and 'target'")
            for field in ("input", "target"):
                if not isinstance(row.get(field), str) or not row[field].strip():
                    raise ValueError(f"{data}:{line_no}: field {field!r} must be a non-empty string")
            tasks.append(AnswerTask(row["input"], row["target"], key=str(row.get("key", line_no))))
    if not tasks:
        raise ValueError(f"{data}: no rows")
    return tasks


def _sample_from_dict(d: dict) -> Sample:
    """A store entry as a checkpoint holds it (tuples were written as lists) back to a ``Sample``."""
    def tup(x):
        return None if x is None else tuple(x)

    return Sample(**dict(d, positive=tup(d["positive"]), negative=tup(d["negative"]),
                         response=tup(d["response"])))


class Hir2023Trainer(HiRTrainer):
    """HIR 2023 with ``HiRTrainer``'s parts (see the module docstring). Tasks are answer tasks
    (``data: bbh[:task,...]`` or ``{"input", "target"}`` rows) or constraint tasks (anything
    ``HiRTrainer`` reads)."""

    def __init__(self, config, **kwargs):
        if config.kl_coef > 0 or config.kl_loss_coef > 0:
            raise ValueError("kl_coef / kl_loss_coef are RL settings; algorithm: hir2023 has no KL "
                             "term (set them to 0)")
        super().__init__(config, **kwargs)
        cfg = self.cfg
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda i: min(1.0, (i + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0)
        self.store: list[Sample] = []
        self.skipped = 0
        self.updates = 0
        self._head = lm_head_weight(self.model)
        self._cost_weight = ModelFlops.from_config(self.model.config).attention_cost_weight

    # --- checkpoints --------------------------------------------------------------------------

    def _extra_state(self) -> dict:
        return {"store": [dataclasses.asdict(x) for x in self.store], "skipped": self.skipped,
                "updates": self.updates}

    def _load_extra_state(self, state: dict, path: str) -> None:
        if "store" not in state:
            raise ValueError(f"resuming {path}: the checkpoint holds no HIR 2023 sample store (was "
                             "it written by another algorithm?)")
        self.store = [_sample_from_dict(x) for x in state["store"]]
        self.skipped, self.updates = int(state["skipped"]), int(state["updates"])

    # --- data ---------------------------------------------------------------------------------

    def _load_tasks(self):
        if is_answer_data(self.cfg.data):
            return load_answer_tasks(self.cfg.data, "train")
        return super()._load_tasks()

    def _load_eval_tasks(self):
        if self.cfg.eval_data and is_answer_data(self.cfg.eval_data):
            return load_answer_tasks(self.cfg.eval_data, "heldout")[:self.cfg.eval_tasks]
        if not self.cfg.eval_data and is_answer_data(self.cfg.data):
            return load_answer_tasks(self.cfg.data, "heldout")[:self.cfg.eval_tasks]
        return super()._load_eval_tasks()

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # --- evaluation ---------------------------------------------------------------------------

    def evaluate(self, tasks=None, *, samples=None, temperature=None, seed=None) -> dict:
        """Constraint tasks: ILA/CLA as ``HiRTrainer``. Answer tasks: exact-match accuracy
        (reported as ``ila`` and ``cla`` too, so the training loop logs it)."""
        tasks = self.eval_tasks if tasks is None else tasks
        if not tasks or not isinstance(tasks[0], AnswerTask):
            return super().evaluate(tasks, samples=samples, temperature=temperature, seed=seed)
        samples = samples or self.cfg.eval_samples
        temperature = self.cfg.eval_temperature if temperature is None else temperature
        groups = self._rollout(tasks, samples, temperature,
                               _step_seed(self.cfg.seed if seed is None else seed, 0, stream=1))
        hits = [relabel_answer(t, c.token_ids, self._decode(c.token_ids)).correct
                for t, g in zip(tasks, groups) for c in g]
        acc = sum(hits) / len(hits)
        return {"ila": acc, "cla": acc, "accuracy": acc}

    # --- one iteration ------------------------------------------------------------------------

    def _relabel(self, tasks, groups) -> tuple[list[Sample], list[list[bool]]]:
        """Relabeled samples and each output's verdicts (answer tasks: [correct])."""
        samples, verdicts = [], []
        answer = [i for i, t in enumerate(tasks) if isinstance(t, AnswerTask)]
        other = [i for i in range(len(tasks)) if i not in set(answer)]
        sats = {}
        if other:
            checked = self._verify([tasks[i] for i in other], [groups[i] for i in other])
            sats = dict(zip(other, checked))
        for i, (task, group) in enumerate(zip(tasks, groups)):
            for j, c in enumerate(group):
                if not c.token_ids:
                    self.skipped += 1
                    continue
                if i in sats:
                    sat = sats[i][j]
                    verdicts.append(list(sat))
                    sample = relabel_constraints(task, sat, c.token_ids)
                else:
                    sample = relabel_answer(task, c.token_ids, self._decode(c.token_ids))
                    verdicts.append([bool(sample.correct)])
                if sample is None:
                    self.skipped += 1
                else:
                    samples.append(sample)
        return samples, verdicts

    def step(self) -> dict:
        cfg, dev, s = self.cfg, self.device, self.step_index
        times = {}
        _sync(dev)
        t0 = time.perf_counter()
        tasks = self.sampler.next_batch(cfg.tasks_per_step)
        groups = self._rollout(tasks, cfg.rollouts_per_task, cfg.temperature, _step_seed(cfg.seed, s))
        _sync(dev)
        times["rollout"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        new, verdicts = self._relabel(tasks, groups)
        self.store.extend(new)
        times["relabel"] = time.perf_counter() - t0
        _sync(dev)
        t0 = time.perf_counter()
        train = self._train_store(s)
        _sync(dev)
        times["train"] = time.perf_counter() - t0

        self.step_index += 1
        self.rollouts += sum(len(g) for g in groups)
        originals = max(1, len(verdicts))
        return {
            "step": self.step_index,
            "rollouts": self.rollouts,
            "ila": sum(all(v) for v in verdicts) / originals,
            "cla": sum(map(sum, verdicts)) / max(1, sum(map(len, verdicts))),
            "replay_count": len(new),          # relabeled samples added this iteration
            "store": len(self.store),
            "skipped": self.skipped,
            "response_length": sum(len(c.token_ids) for g in groups for c in g) / originals,
            **train,
            "lr": self.scheduler.get_last_lr()[0],
            **{f"time_{k}": v for k, v in times.items()},
        }

    def _train_store(self, step: int) -> dict:
        cfg = self.cfg
        sums = {"loss": 0.0, "ls_ce": 0.0, "contrast": 0.0, "entropy": 0.0, "grad_norm": 0.0,
                "swapped": 0, "train_tokens": 0}
        batches = 0
        for epoch in range(cfg.hir2023_epochs):
            rng = random.Random(_step_seed(cfg.seed, step, stream=2 + epoch))
            order = list(range(len(self.store)))
            rng.shuffle(order)
            for start in range(0, len(order), cfg.hir2023_batch_size):
                chosen = [self.store[i] for i in order[start:start + cfg.hir2023_batch_size]]
                examples = [sub_output(x, rng, self._decode) if cfg.hir2023_sub_output else whole_output(x)
                            for x in chosen]
                parts = self.update(examples)
                batches += 1
                for k in ("loss", "ls_ce", "contrast", "entropy", "grad_norm"):
                    sums[k] += parts[k]
                sums["swapped"] += sum(e.swapped for e in examples)
                sums["train_tokens"] += parts["train_tokens"]
        for k in ("loss", "ls_ce", "contrast", "entropy", "grad_norm"):
            sums[k] = sums[k] / batches if batches else None
        sums["optimizer_steps"] = batches
        self._refresh_infer_model()
        return sums

    # --- one optimizer step -------------------------------------------------------------------

    def _rows(self, examples: list[Example]):
        """Scored rows (prompt ids, target ids) and where each sample's statistics are:
        ``pos_index [B]`` and ``cand_index``/``cand_mask`` ``[B, K]``."""
        cfg = self.cfg
        prompts, targets, cand_lists = [], [], []

        def row(example: Example, instruction: tuple) -> int:
            prompts.append(self.prompt_ids(_Text(example.sample.prompt(instruction))) + list(example.prefix))
            targets.append(list(example.target))
            return len(prompts) - 1

        pos_index = [row(e, e.positive) for e in examples]
        group = cfg.hir2023_contrast_group
        for i, e in enumerate(examples):
            cands = []
            if cfg.hir2023_contrast == "in-batch":
                lo = (i // group) * group
                seen = {e.positive}
                for other in examples[lo:lo + group]:
                    instr = other.positive
                    if (other.sample.kind != e.sample.kind or instr in seen
                            or (e.sample.kind == "constraint" and set(instr) <= set(e.positive))):
                        continue  # y satisfies a subset of its own constraints: not a negative
                    seen.add(instr)
                    cands.append(instr)
                if e.negative is not None and e.negative not in seen:
                    cands.append(e.negative)
            elif cfg.hir2023_contrast == "two-way" and e.negative is not None:
                cands.append(e.negative)
            cand_lists.append([row(e, c) for c in cands])
        width = max([len(c) for c in cand_lists] + [1])
        cand_index = torch.zeros(len(examples), width, dtype=torch.long)
        cand_mask = torch.zeros(len(examples), width, dtype=torch.bool)
        for i, c in enumerate(cand_lists):
            cand_index[i, :len(c)] = torch.tensor(c, dtype=torch.long)
            cand_mask[i, :len(c)] = True
        return prompts, targets, torch.tensor(pos_index), cand_index, cand_mask

    def _stats(self, batch) -> torch.Tensor:
        return packed_stats(self.model, batch.to(self.device), self._head,
                            autocast=self._autocast if self.autocast else None)

    def update(self, examples: list[Example]) -> dict:
        """One AdamW step on the HIR 2023 loss of ``examples``; returns the loss parts."""
        cfg, dev = self.cfg, self.device
        prompts, targets, pos_index, cand_index, cand_mask = self._rows(examples)
        lengths = torch.tensor([len(e.target) for e in examples], device=dev)
        pos_index, cand_index, cand_mask = pos_index.to(dev), cand_index.to(dev), cand_mask.to(dev)
        micro = pack(prompts, targets, max_tokens_per_batch=cfg.max_tokens_per_micro_batch,
                     attention_cost_weight=self._cost_weight)

        def loss_of(stats):
            return hir2023_loss(stats[pos_index], lengths, stats[cand_index, 0], cand_mask,
                                contrast=cfg.hir2023_contrast, eps=cfg.hir2023_label_smoothing,
                                entropy_coef=cfg.hir2023_entropy_coef)

        def gather(parts):
            stats = torch.zeros(len(prompts), 3, device=dev)
            for b, s in parts:
                stats = stats.index_copy(0, torch.tensor(b.rows, device=dev), s)
            return stats

        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if len(micro) == 1:
            loss, parts = loss_of(gather([(micro[0], self._stats(micro[0]))]))
            loss.backward()
        else:
            with torch.no_grad():
                stats = gather([(b, self._stats(b)) for b in micro])
            stats.requires_grad_(True)
            loss, parts = loss_of(stats)
            loss.backward()
            grad = stats.grad
            for b in micro:
                rows = torch.tensor(b.rows, device=dev)
                (self._stats(b) * grad.index_select(0, rows)).sum().backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        self.optimizer.step()
        self.scheduler.step()
        self.updates += 1
        parts["grad_norm"] = float(norm)
        parts["micro_batches"] = len(micro)
        parts["train_tokens"] = sum(len(p) + len(t) for p, t in zip(prompts, targets))
        return parts
