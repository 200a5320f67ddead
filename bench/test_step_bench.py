"""One full HiR training step, timed by phase (rollout, verify, replay, train).

- ``cpu-tiny``: the demo's tiny Llama (64-d, 2 layers) on synthetic 3-5-constraint tasks,
  B = 8 tasks x m = 6 rollouts, up to 64 new tokens, one thread (a tiny model is overhead-bound).
- ``gpu-0.5b`` (marked ``gpu``): a Qwen2.5-0.5B-shaped model with random weights (24 layers,
  d = 896, 14/2 heads, vocabulary 151,936) in bf16 autocast, B = 16 x m = 6, 256 new tokens
  (random weights rarely stop, so every response runs to the limit).

The goal of issue 7: verify + replay under 2% of the step. ``extra_info`` carries each phase's
seconds and share of the step (from the trainer's own per-phase timers, summed over the rounds).
The baseline is the step itself: the same loop with ``replay: off`` is timed beside it.
"""
import random

import pytest
import torch

from hirfast import verify
from hirfast.config import TrainConfig
from hirfast.demo_model import (CHAT_TEMPLATE, DEMO_IDS, SPECIAL_TOKENS, build_model,
                                build_tokenizer, demo_tasks, sample_response)
from hirfast.trainer import HiRTrainer

PHASES = ("rollout", "verify", "replay", "train")


def _tasks(n, seed):
    known = set(verify.instruction_ids())
    if sum(i in known for i in DEMO_IDS) < 3:
        pytest.skip("the checker knows fewer than 3 of the demo's constraint ids")
    return demo_tasks(n, seed=seed, available_ids=known)


def _run(benchmark, trainer, info):
    metrics = []

    def step():
        metrics.append(trainer.step())
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(step, rounds=5, warmup_rounds=1, iterations=1)
    timed = metrics[1:]  # the warm-up round is not a timing
    total = {p: sum(m[f"time_{p}"] for m in timed) for p in PHASES}
    step_s = sum(total.values())
    info.update({f"{p}_s_per_step": total[p] / len(timed) for p in PHASES})
    info.update({f"{p}_share": total[p] / step_s for p in PHASES})
    info["verify_plus_replay_share"] = (total["verify"] + total["replay"]) / step_s
    info["replays_per_step"] = sum(m["replay_count"] for m in timed) / len(timed)
    per_step = trainer.cfg.tasks_per_step * trainer.cfg.rollouts_per_task
    info["response_tokens_per_step"] = sum(m["response_length"] for m in timed) / len(timed) * per_step
    benchmark.extra_info.update(info)


@pytest.mark.parametrize("replay", [True, False], ids=["hir", "replay-off"])
def test_step_cpu_tiny(benchmark, tmp_path, replay):
    torch.set_num_threads(1)
    tasks = _tasks(400, seed=0)
    rng = random.Random(0)
    corpus = [sample_response(rng, t, 0.5) for t in tasks]
    tokenizer = build_tokenizer(corpus + [f"<|user|>\n{t.instruction()}<|end|>\n<|assistant|>\n"
                                          for t in tasks])
    model = build_model(tokenizer, seed=0)
    cfg = TrainConfig(model="demo-tiny", out=str(tmp_path / "run"), steps=1000, tasks_per_step=8,
                      rollouts_per_task=6, max_new_tokens=64, lr=3e-4, progress=False,
                      replay=replay, device="cpu")
    trainer = HiRTrainer(cfg, model=model, tokenizer=tokenizer, tasks=tasks)
    _run(benchmark, trainer, {"model": "demo tiny Llama 64-d x 2 layers",
                              "params": sum(p.numel() for p in model.parameters()),
                              "B": 8, "m": 6, "max_new_tokens": 64, "dtype": "fp32",
                              "threads": 1, "replay": replay})


@pytest.mark.gpu
@pytest.mark.parametrize("replay", [True, False], ids=["hir", "replay-off"])
def test_step_gpu_qwen05b_shape(benchmark, tmp_path, replay):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tasks = _tasks(400, seed=0)
    vocab_size = 151936
    # A word-level vocabulary as large as Qwen2.5's, so every sampled id decodes.
    words = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    for t in tasks:
        for piece, _ in pre.pre_tokenize_str(t.instruction()):
            words.setdefault(piece, len(words))
    for i in range(len(words), vocab_size):
        words[f"Ġw{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=words, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>",
                                        unk_token="<|unk|>", eos_token="<|end|>",
                                        chat_template=CHAT_TEMPLATE)
    config = Qwen2Config(vocab_size=vocab_size, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    cfg = TrainConfig(model="qwen2.5-0.5b-shape", out=str(tmp_path / "run"), steps=1000,
                      tasks_per_step=16, rollouts_per_task=6, max_new_tokens=256, lr=1e-6,
                      progress=False, replay=replay, device="cuda")
    trainer = HiRTrainer(cfg, model=model, tokenizer=tokenizer, tasks=tasks)
    _run(benchmark, trainer, {"model": "Qwen2.5-0.5B shape, random weights", "B": 16, "m": 6,
                              "max_new_tokens": 256, "dtype": "bf16 autocast",
                              "replay": replay})
