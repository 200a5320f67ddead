"""``TrainConfig``: every setting of a training run, from a YAML file plus ``--key value`` overrides.

Each field's ``help`` metadata is its documentation (it is also the ``hirfast train --help`` text).
Paper values (HiR, arXiv 2512.23457) are the defaults where the paper gives them: m = 6 rollouts
per task, k = 2 replays per task, lambda_0 = 2, eta = 0.05, REINFORCE++ with a binary reward.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field

import yaml

__all__ = ["TrainConfig", "load_config", "add_config_arguments", "config_from_args"]


def _f(default, help: str, choices: tuple | None = None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    # --- what to train on ---
    model: str = _f("", "Hugging Face causal LM: a hub name, a local directory or a GGUF file (needs a chat "
                        "template, or set chat_template)")
    tokenizer: str | None = _f(None, "tokenizer name or path; default: the model's")
    chat_template: str | None = _f(None, "a Jinja chat template to use instead of the tokenizer's")
    data: str | None = _f(None, "training tasks, JSONL (IFEval-style, HIR-16K or "
                                "IF_multi_constraints rows); default: synthetic tasks")
    synthetic_tasks: int = _f(2000, "how many synthetic tasks to generate when data is not set")
    eval_data: str | None = _f(None, "held-out tasks (JSONL) for eval_every; default: synthetic "
                                     "tasks drawn with another seed")
    eval_tasks: int = _f(64, "how many held-out tasks to evaluate (the first N)")
    eval_samples: int = _f(1, "responses sampled per held-out task at each evaluation")
    eval_temperature: float = _f(0.0, "sampling temperature for evaluation (0 = greedy)")
    eval_every: int = _f(0, "evaluate on held-out tasks every N steps and at the end (0 = never)")
    strict_data: bool = _f(False, "reject the data file at its first malformed row instead of "
                                  "skipping malformed rows")
    out: str = _f("runs/hir", "output directory: metrics.jsonl, checkpoints/, config.yaml")
    seed: int = _f(0, "seed of data order and rollout sampling (a model built from a config is "
                      "not initialized here: it comes from model)")
    # --- the RL loop ---
    steps: int = _f(100, "training steps (one rollout batch and one or more optimizer steps each)")
    tasks_per_step: int = _f(8, "B: tasks sampled per step")
    rollouts_per_task: int = _f(6, "m: responses sampled per task (paper: 6)")
    max_new_tokens: int = _f(512, "most tokens generated per response")
    max_prompt_tokens: int = _f(1024, "longer instructions are skipped at load time, with a count")
    temperature: float = _f(1.0, "rollout sampling temperature (also scales the training logits)")
    top_p: float = _f(1.0, "rollout nucleus sampling mass (1 = off)")
    top_k: int = _f(0, "rollout top-k sampling (0 = off)")
    reward: str = _f("binary", "binary: 1 iff every constraint holds (the paper's); dense: the "
                               "share of constraints met", ("binary", "dense"))
    loose_verify: bool = _f(False, "check constraints with IFEval's loose variant instead of strict")
    verify_threads: int = _f(1, "threads of the constraint checker")
    # --- hindsight replay ---
    replay: bool = _f(True, "Hindsight instruction Replay on; off = the plain baseline with "
                            "everything else identical")
    replay_selection: str = _f("published", "published: the authors' code, the top num_replay "
                                             "of the whole batch by lambda_s * CLA + token-mean "
                                             "entropy among responses with 0 < CLA < 1; jaccard: "
                                             "hirfast's earlier per-task top replay_k by Jaccard "
                                             "diversity + lambda_s * CLA",
                               ("published", "jaccard"))
    replay_k: int = _f(2, "k: failed responses replayed per task (paper: 2); with published "
                          "selection, num_replay defaults to replay_k x tasks_per_step")
    num_replay: int = _f(0, "published selection: responses replayed per step from the whole batch "
                            "(0: replay_k x tasks_per_step; the authors do not publish theirs)")
    replay_max_per_task: int = _f(0, "published selection: at most this many replays of one task "
                                     "(0: no cap, as published)")
    replay_old_logprobs: str = _f("original", "log pi_old and log pi_ref of a replay: original "
                                              "(as published: those of y under the original "
                                              "instruction x, so the ratio is pi(y|x') / "
                                              "pi_old(y|x) and the PPO clip applies) or rewritten "
                                              "(no-grad forwards under x')",
                                  ("original", "rewritten"))
    replay_recheck: bool = _f(True, "verify each replay again under its rewritten instruction x' "
                                    "and drop (and count) those that fail (prompt-dependent checks "
                                    "such as IFBench repeat:* can); the authors do not")
    replay_truncated: bool = _f(True, "responses stopped by max_new_tokens can be replayed (as "
                                      "published); false: they are not candidates (counted)")
    replay_lambda0: float = _f(2.0, "lambda_0 of the integrity weight lambda_s = lambda_0 (1+eta)^s")
    replay_eta: float = _f(0.05, "eta of lambda_s = lambda_0 (1+eta)^s")
    replay_importance: bool = _f(False, "importance-correct replays by pi_old(y|x') / pi_old(y|x) "
                                        "(off in the paper; needs replay_old_logprobs: rewritten, "
                                        "since original already puts pi_old(y|x) in the ratio)")
    # --- algorithm ---
    algorithm: str = _f("hir", "hir: Hindsight instruction Replay with RL (the trainer above); "
                               "hir2023: HIR 2023's sample / relabel / supervised iterations with "
                               "the contrastive instruction loss (hirfast.hir2023_train)",
                        ("hir", "hir2023"))
    hir2023_epochs: int = _f(10, "hir2023: epochs over the whole sample store per iteration (seed: 10)")
    hir2023_batch_size: int = _f(64, "hir2023: samples per optimizer step (seed: 64)")
    hir2023_label_smoothing: float = _f(0.2, "hir2023: eps of the label-smoothed CE and of the "
                                             "two-way contrast's weights (seed: 0.2)")
    hir2023_entropy_coef: float = _f(0.001, "hir2023: weight of the entropy bonus (seed: 0.001)")
    hir2023_contrast: str = _f("two-way", "hir2023: two-way (positive vs its opposite "
                                          "instruction, the seed's code), in-batch (over the "
                                          "batch's instructions, the paper's Eq. 4), or off",
                               ("two-way", "in-batch", "off"))
    hir2023_contrast_group: int = _f(8, "hir2023, in-batch contrast: samples whose instructions "
                                        "are contrasted together (scores rows x instructions)")
    hir2023_sub_output: bool = _f(True, "hir2023: sub-output sampling for answer tasks (a prefix "
                                        "of the output moves into the input, a span is the target)")
    # --- advantages and loss ---
    advantage: str = _f("reinforce++", "advantage estimator",
                        ("reinforce++", "reinforce++-baseline", "grpo"))
    kl_coef: float = _f(0.0, "beta of the per-token KL penalty in the reward (needs a reference)")
    kl_loss_coef: float = _f(0.0, "weight of the KL term in the loss (needs a reference)")
    kl_estimator: str = _f("k3", "KL estimator (d = log pi_ref - log pi) for the reward penalty, the "
                                 "loss term and the logged KL. Values all estimate KL(pi||ref); "
                                 "their gradients in the loss differ: k1 = -d gives 0 in "
                                 "expectation (noise only; warned), k2 = d^2/2 gives the gradient "
                                 "of the reverse KL(pi||ref), k3 = e^d - d - 1 (clamped to at most "
                                 "10, as verl and OpenRLHF do) that of the forward KL(ref||pi)",
                           ("k1", "k2", "k3"))
    ref_model: str | None = _f(None, "frozen reference model for KL (name, directory or GGUF file; when a KL "
                                     "coefficient is > 0); "
                                     "default: the initial model, i.e. model, or, when model is a "
                                     "hirfast checkpoint, the reference its run used. Resuming "
                                     "with another reference is an error")
    entropy_coef: float = _f(0.0, "entropy bonus weight in the loss")
    clip_low: float = _f(0.2, "PPO clip epsilon below 1")
    clip_high: float = _f(0.2, "PPO clip epsilon above 1")
    loss_agg: str = _f("token-mean", "loss aggregation",
                       ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"))
    mini_batches: int = _f(1, "optimizer steps per rollout batch (1: pi_old = pi.detach(), no "
                              "extra forward)")
    max_tokens_per_micro_batch: int = _f(16384, "token budget of one forward/backward "
                                                "(gradient accumulation beyond it)")
    # --- optimizer ---
    lr: float = _f(1e-6, "peak learning rate (AdamW)")
    min_lr_ratio: float = _f(0.0, "final learning rate as a share of lr (cosine schedule)")
    lr_schedule: str = _f("cosine", "after warm-up", ("cosine", "constant"))
    warmup_steps: int = _f(0, "linear warm-up steps (of optimizer steps)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    adam_beta1: float = _f(0.9, "AdamW beta1")
    adam_beta2: float = _f(0.999, "AdamW beta2")
    adam_eps: float = _f(1e-8, "AdamW epsilon")
    grad_clip: float = _f(1.0, "clip the global gradient norm to this (0 = off)")
    # --- device and precision ---
    device: str = _f("auto", "auto (CUDA if available), cpu, cuda, cuda:N")
    bf16: str = _f("auto", "bf16 autocast: auto (on a GPU), on, off", ("auto", "on", "off"))
    gradient_checkpointing: str = _f("auto", "auto (on a GPU), on, off", ("auto", "on", "off"))
    disable_dropout: bool = _f(True, "set the policy's dropout to 0, so the loss forward (train "
                                     "mode) and pi_old / the reference (eval mode) compute the same "
                                     "distribution (verl does the same); false keeps dropout in "
                                     "the loss forward only")
    # --- checkpoints and logging ---
    save_every: int = _f(0, "checkpoint every N steps (0 = only at the end)")
    keep_checkpoints: int = _f(2, "how many recent checkpoints to keep (0 = all)")
    resume: bool = _f(False, "continue from the latest checkpoint in out")
    progress: bool = _f(True, "show a progress bar")
    tensorboard: bool = _f(False, "also write TensorBoard events to out/tensorboard")

    # --- HIR-16K type4 criteria: dataset functions (sandbox) and soft criteria (LLM judge) ---
    allow_dataset_code: bool = _f(False, "run type4 rows' [rule] functions (untrusted dataset "
                                         "code) in the sandbox; off: such rows are skipped")
    sandbox_workers: int = _f(2, "sandbox worker processes for [rule] functions")
    sandbox_timeout_s: float = _f(2.0, "wall-clock (and CPU) limit of one [rule] call")
    sandbox_memory_mb: int = _f(1024, "address-space limit of one [rule] call, MiB")
    judge_model: str | None = _f(None, "the LLM judge's model name for [llm] criteria (unset: "
                                       "rows with them are skipped)")
    judge_base_url: str | None = _f(None, "the judge's OpenAI-compatible API root, e.g. "
                                          "http://127.0.0.1:8080/v1; default OPENAI_BASE_URL")
    judge_api_key_env: str = _f("OPENAI_API_KEY", "environment variable holding the judge's key")
    judge_concurrency: int = _f(8, "judge requests in flight at most")
    judge_timeout_s: float = _f(60.0, "one judge request's timeout, seconds")
    judge_retries: int = _f(3, "retries of a failed judge request (exponential backoff)")
    judge_cache: str | None = _f(None, "SQLite cache of judge verdicts; default "
                                      "out/judge_cache.sqlite; empty: no cache")

    def validate(self) -> "TrainConfig":
        """Raise ``ValueError`` naming the first bad field."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} = {getattr(self, f.name)!r}: expected one of {choices}")
        positive = ["steps", "tasks_per_step", "rollouts_per_task", "max_new_tokens",
                    "max_prompt_tokens", "mini_batches", "max_tokens_per_micro_batch",
                    "verify_threads", "eval_samples", "sandbox_workers", "judge_concurrency"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ["replay_k", "num_replay", "replay_max_per_task", "warmup_steps", "save_every", "eval_every", "keep_checkpoints",
                     "kl_coef", "kl_loss_coef", "entropy_coef", "grad_clip", "weight_decay",
                     "top_k", "eval_tasks"]:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}: must not be negative")
        if self.sandbox_timeout_s <= 0 or self.judge_timeout_s <= 0:
            raise ValueError("sandbox_timeout_s and judge_timeout_s must be > 0")
        if self.sandbox_memory_mb < 64:
            raise ValueError(f"sandbox_memory_mb = {self.sandbox_memory_mb}: at least 64 (a Python "
                             "child needs that much address space)")
        if self.judge_retries < 0:
            raise ValueError(f"judge_retries = {self.judge_retries}: must not be negative")
        for name in ["hir2023_epochs", "hir2023_batch_size", "hir2023_contrast_group"]:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} = {getattr(self, name)}: must be at least 1")
        if not 0 <= self.hir2023_label_smoothing < 1:
            raise ValueError(f"hir2023_label_smoothing = {self.hir2023_label_smoothing}: must be in [0, 1)")
        if self.hir2023_entropy_coef < 0:
            raise ValueError(f"hir2023_entropy_coef = {self.hir2023_entropy_coef}: must not be negative")
        if self.temperature <= 0:
            raise ValueError(f"temperature = {self.temperature}: must be > 0 for sampling")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p = {self.top_p}: must be in (0, 1]")
        if self.lr <= 0:
            raise ValueError(f"lr = {self.lr}: must be > 0")
        if self.replay_importance and self.replay_old_logprobs != "rewritten":
            raise ValueError("replay_importance = true needs replay_old_logprobs = rewritten: with "
                             "original, the ratio already divides by pi_old(y|x)")
        if self.mini_batches > self.tasks_per_step:
            raise ValueError(f"mini_batches = {self.mini_batches} exceeds tasks_per_step = "
                             f"{self.tasks_per_step}: each mini-batch needs at least one task")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def replays_per_step(self) -> int:
        """``num_replay``, or its default ``replay_k x tasks_per_step``."""
        return self.num_replay or self.replay_k * self.tasks_per_step


def _field_type(f: dataclasses.Field) -> type:
    hints = typing.get_type_hints(TrainConfig)
    t = hints[f.name]
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def _coerce(f: dataclasses.Field, value):
    """Convert a YAML or command-line value to the field's type, naming the field on error."""
    t = _field_type(f)
    if value is None:
        return None
    if t is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{f.name}: expected true/false, got {value!r}")
    try:
        if t is int and isinstance(value, float) and value != int(value):
            raise ValueError
        return t(value)
    except (TypeError, ValueError):
        raise ValueError(f"{f.name}: expected {t.__name__}, got {value!r}") from None


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_RENAMED = {"reference_model": "ref_model"}


def load_config(path: str | None = None, overrides: dict | None = None) -> TrainConfig:
    """A config from a YAML file (unknown keys are an error) with ``overrides`` applied on top."""
    values: dict = {}
    if path:
        with open(path, encoding="utf-8") as fh:
            loaded = yaml.safe_load(fh) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(loaded).__name__}")
        values.update(loaded)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    for old, new in _RENAMED.items():  # settings of earlier versions
        if old in values:
            if new in values and values[new] != values[old]:
                raise ValueError(f"{old} is the old name of {new}; give only {new}")
            values[new] = values.pop(old)
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(_FIELDS)}")
    return TrainConfig(**{k: _coerce(_FIELDS[k], v) for k, v in values.items()})


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and one ``--<field>`` option per setting (``-`` or ``_`` both work)."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of settings (TrainConfig)")
    group = parser.add_argument_group("settings (override the config file)")
    for f in dataclasses.fields(TrainConfig):
        names = [f"--{f.name.replace('_', '-')}"]
        if "_" in f.name:
            names.append(f"--{f.name}")
        t = _field_type(f)
        kwargs = {"dest": f.name, "default": None, "help": f.metadata["help"]}
        if t is bool:
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        else:
            kwargs["metavar"] = t.__name__.upper()
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        group.add_argument(*names, **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {name: getattr(args, name, None) for name in _FIELDS}
    return load_config(args.config, overrides)
