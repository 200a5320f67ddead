"""Checkpoints of a training run: written atomically, pruned, found and restored.

A checkpoint is ``<out>/checkpoints/step-NNNNNNNN/``: the model in Hugging Face format
(safetensors), the tokenizer, ``reference.json`` (which model the run's reference was) and
``trainer_state.pt`` (step, rollouts, optimizer, scheduler, data sampler, RNG states, the config,
and the algorithm's own state from ``trainer._extra_state()``, e.g. HIR 2023's sample store). It is
written to a temporary directory, fsynced and renamed into place, so a killed run never leaves a
half-written checkpoint where ``latest`` would find it.

The trainer is any ``HiRTrainer``: these functions read its ``cfg``, ``model``, ``tokenizer``,
``optimizer``, ``scheduler``, ``sampler``, ``step_index``, ``rollouts`` and reference.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil

import torch

from . import models
from .rl_loss import REFERENCE_FILE, saved_reference

__all__ = ["CHECKPOINT_DIR", "STATE_FILE", "save", "load", "latest", "truncate_metrics"]

log = logging.getLogger("hirfast.trainer")

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.pt"


def save(trainer) -> str:
    """Write ``out/checkpoints/step-NNNNNNNN`` atomically; prune old ones; return its path."""
    root = os.path.join(trainer.cfg.out, CHECKPOINT_DIR)
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"step-{trainer.step_index:08d}")
    tmp = os.path.join(root, f".tmp-step-{trainer.step_index:08d}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save_pretrained(tmp, safe_serialization=True)
    trainer.tokenizer.save_pretrained(tmp)
    with open(os.path.join(tmp, REFERENCE_FILE), "w", encoding="utf-8") as fh:
        json.dump({"reference": trainer.reference_source}, fh)
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"step": trainer.step_index, "rollouts": trainer.rollouts,
                "optimizer": trainer.optimizer.state_dict(),
                "scheduler": trainer.scheduler.state_dict(),
                "sampler": trainer.sampler.state_dict(), "rng": rng,
                "config": trainer.cfg.to_dict(), "extra": trainer._extra_state()},
               os.path.join(tmp, STATE_FILE))
    _fsync_tree(tmp)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(tmp, final)
    _prune(root, trainer.cfg.keep_checkpoints)
    log.info("checkpoint %s", final)
    return final


def load(trainer, path: str | None = None) -> bool:
    """Restore ``trainer`` from ``path`` or the latest complete checkpoint in its ``out``; False if
    there is none."""
    path = path or latest(trainer.cfg.out)
    if path is None:
        log.info("resume: no checkpoint in %s, starting fresh", trainer.cfg.out)
        return False
    saved_ref = saved_reference(path)
    if trainer.reference is not None and saved_ref not in (None, trainer.reference_source):
        raise ValueError(f"resuming {path}: its run's reference model was {saved_ref}, this "
                         f"run's is {trainer.reference_source}; set ref_model: {saved_ref} "
                         "(or start a new run)")
    saved = models.load_causal_lm(path, dtype=torch.float32)
    trainer.model.load_state_dict(saved.state_dict())
    state = torch.load(os.path.join(path, STATE_FILE), map_location="cpu", weights_only=True)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.sampler.load_state_dict(state["sampler"])
    random.setstate(_as_tuple(state["rng"]["python"]))
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    trainer.step_index, trainer.rollouts = int(state["step"]), int(state["rollouts"])
    trainer._load_extra_state(state.get("extra") or {}, path)
    trainer._refresh_infer_model()
    log.info("resumed from %s (step %d)", path, trainer.step_index)
    return True


def latest(out: str) -> str | None:
    """The newest complete checkpoint directory under ``out`` (temporaries are ignored)."""
    root = os.path.join(out, CHECKPOINT_DIR)
    if not os.path.isdir(root):
        return None
    done = sorted(d for d in os.listdir(root)
                  if d.startswith("step-") and os.path.exists(os.path.join(root, d, STATE_FILE)))
    return os.path.join(root, done[-1]) if done else None


def truncate_metrics(path: str, step: int) -> None:
    """Drop metric lines past ``step`` (those of steps a resumed run will redo)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as fh:
        lines = [ln for ln in fh if ln.strip() and json.loads(ln)["step"] <= step]
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    os.replace(tmp, path)


def _prune(root: str, keep: int) -> None:
    done = sorted(d for d in os.listdir(root) if d.startswith("step-"))
    for d in done[:-keep] if keep else []:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def _fsync_tree(path: str) -> None:
    for dirpath, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
