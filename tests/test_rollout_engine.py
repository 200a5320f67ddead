"""The rollout engine's GPU-motivated parts (issue #12 item 4), checked on the CPU where they can be:
stop flags read back every k steps, bounded compaction, key-length buckets and engine reuse for
CUDA graphs, the device guard around capture; and their `gpu` twins, which run unchanged on a GPU.

The CPU checks compare the engine with itself under another setting (k = 1, the whole-row copy,
the exact decode shapes) and, through test_rollout's references, with Hugging Face.

Also what `hirfast eval` asks of the engine (issue #14 item 6): tokens without log-probs, a
progress callback, and one call over more prompts than cache rows.
"""
import contextlib

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import hirfast.rollout as rollout_module
from hirfast.rollout import generate, release

VOCAB = 256
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=96,
              initializer_range=0.1, bos_token_id=None, eos_token_id=None, pad_token_id=None)
PROMPTS = [[3, 17, 45, 9], [200, 11], [3, 17, 45, 9], list(range(30, 51)), [77]]
# Many stop tokens: rows stop at many different steps, the first one included, and others run
# to max_new_tokens.
STOPS = [5, 17, 60, 101, 130, 7, 99, 150, 33, 210]


def tiny_llama(**overrides):
    torch.manual_seed(1234)
    model = LlamaForCausalLM(LlamaConfig(**{**COMMON, **overrides})).eval()
    model.generation_config.eos_token_id = None
    return model


@pytest.fixture(scope="module")
def llama():
    m = tiny_llama()
    yield m
    release(m)


@pytest.fixture
def pad_decode_to_buckets(monkeypatch):
    """Calling it makes later engines decode the CUDA graphs' bucketed shapes (idle rows,
    key-length buckets) eagerly."""
    original_init = rollout_module._Engine.__init__

    def install():
        def padded_init(self, *args, **kw):
            original_init(self, *args, **kw)
            self.pad_to_buckets = True
        monkeypatch.setattr(rollout_module._Engine, "__init__", padded_init)
    return install


def same_outputs(a, b, atol=1e-5):
    for group_a, group_b in zip(a, b):
        for x, y in zip(group_a, group_b):
            assert x.token_ids == y.token_ids and x.finish_reason == y.finish_reason
            assert torch.allclose(x.logprobs, y.logprobs, atol=atol)
            assert torch.allclose(x.full_logprobs, y.full_logprobs, atol=atol)
            assert torch.allclose(x.entropies, y.entropies, atol=10 * atol)


def _gpu_model(dtype=torch.float32, device="cuda", **overrides):
    return tiny_llama(**overrides).to(device, dtype)


# ---- (c) stop flags read back every k steps --------------------------------------------------

@pytest.mark.parametrize("padded", [False, True], ids=["exact", "graph_shapes"])
@pytest.mark.parametrize("interval", [3, 16])
def test_stop_flags_read_every_k_steps_give_the_same_completions(llama, pad_decode_to_buckets,
                                                                  padded, interval):
    """Rows that stop between two reads stay in the batch frozen (no advance, nothing recorded):
    token for token the same completions and finish reasons as reading the flags every step, with
    rows stopping at different steps (the first included), others at max_new_tokens, a batch
    limit that forces several admissions, and the graphs' padded shapes."""
    if padded:
        pad_decode_to_buckets()
    kwargs = dict(n=4, max_new_tokens=14, temperature=1.0, top_k=60, stop_token_ids=STOPS, seed=4,
                  max_batch_size=9, keep_cache=False)
    every_step = generate(llama, PROMPTS, stop_check_interval=1, **kwargs)
    every_k = generate(llama, PROMPTS, stop_check_interval=interval, **kwargs)
    lengths = {len(c.token_ids) for g in every_step for c in g if c.finish_reason == "stop"}
    assert len(lengths) >= 4 and 1 in lengths  # stops at many steps, the first token included
    assert any(c.finish_reason == "length" for g in every_step for c in g)
    same_outputs(every_step, every_k)
    # one read per prefill and decode step before; far fewer now
    assert every_step.stats.stop_flag_reads == (every_step.stats.prefill_calls
                                                + every_step.stats.decode_steps)
    assert every_k.stats.stop_flag_reads < every_step.stats.stop_flag_reads / 2


def test_stop_flags_without_stop_tokens_are_never_read(llama):
    rollout = generate(llama, PROMPTS, n=2, max_new_tokens=6, stop_token_ids=None, seed=0,
                       stop_check_interval=4)
    assert rollout.stats.stop_flag_reads == 0
    assert all(len(c.token_ids) == 6 for g in rollout for c in g)


def test_stop_check_interval_is_validated(llama):
    with pytest.raises(ValueError, match="stop_check_interval must be an integer >= 1"):
        generate(llama, PROMPTS, n=1, max_new_tokens=2, stop_token_ids=[1], seed=0,
                 stop_check_interval=0)


@pytest.mark.gpu
def test_stop_flag_reads_on_gpu_are_fewer_and_outputs_the_same():
    model = _gpu_model()
    kwargs = dict(n=4, max_new_tokens=40, temperature=1.0, stop_token_ids=STOPS, seed=4,
                  keep_cache=False)
    every_step = generate(model, PROMPTS, stop_check_interval=1, **kwargs)
    default = generate(model, PROMPTS, **kwargs)  # every 8 steps on a GPU
    same_outputs(every_step, default, atol=1e-4)
    assert default.stats.stop_flag_reads <= every_step.stats.stop_flag_reads / 4


# ---- (d) compaction copies only the positions in use, a few rows at a time ----------------------

def test_compaction_moves_only_written_positions_in_bounded_groups(llama, monkeypatch):
    """Rows leave the batch: the last live rows move into the holes. The copy covers the
    positions written so far and at most _COMPACT_ROWS rows per gather; the moved rows' keys and
    values equal the originals there."""
    plan = rollout_module.plan_cache(llama.config, sequences=40, group_size=1, max_len=64,
                                     dtype=torch.float32)
    engine = rollout_module._Engine(llama, plan, torch.device("cpu"), torch.float32, False)
    torch.manual_seed(0)
    engine.kv.normal_()
    before = engine.kv.clone()
    engine.row_pos = np.full(40, 10, dtype=np.int64)
    engine.row_pos[[30, 37]] = 23  # the longest movers
    holes, movers = np.arange(0, 20, 2), np.arange(30, 40)
    gathered = []
    original_getitem = torch.Tensor.__getitem__

    def recording_getitem(self, index):
        out = original_getitem(self, index)
        if isinstance(index, tuple) and any(isinstance(i, torch.Tensor) for i in index):
            gathered.append(tuple(out.shape))
        return out

    monkeypatch.setattr(rollout_module, "_COMPACT_ROWS", 4)
    monkeypatch.setattr(torch.Tensor, "__getitem__", recording_getitem)
    try:
        engine._move_kv_rows(holes, movers)
    finally:
        monkeypatch.undo()
    for hole, mover in zip(holes, movers):
        assert torch.equal(engine.kv[:, :, hole, :, :23], before[:, :, mover, :, :23])
    untouched = np.setdiff1d(np.arange(40), holes)
    assert torch.equal(engine.kv[:, :, untouched], before[:, :, untouched])
    # 2 layers x 3 groups (4 + 4 + 2 rows), each (K/V, rows, heads, 23 positions, head_dim)
    assert [g[1] for g in gathered] == [4, 4, 4, 4, 2, 2] and {g[3] for g in gathered} == {23}


def test_generation_with_compaction_matches_whole_batch(llama):
    """Many finished rows leave a full batch (compaction in several groups) or a batch one group
    at a time (max_batch_size = n): the same completions either way."""
    kwargs = dict(n=6, max_new_tokens=12, temperature=1.0, stop_token_ids=STOPS, seed=11)
    together = generate(llama, PROMPTS, keep_cache=False, **kwargs)
    one_group = generate(llama, PROMPTS, max_batch_size=6, keep_cache=False, **kwargs)
    assert together.stats.slots == 30 and one_group.stats.slots == 6
    same_outputs(together, one_group)


@pytest.mark.gpu
def test_compaction_on_gpu_matches_one_group_at_a_time():
    model = _gpu_model()
    kwargs = dict(n=6, max_new_tokens=30, temperature=1.0, stop_token_ids=STOPS, seed=11,
                  keep_cache=False)
    together = generate(model, PROMPTS, **kwargs)
    one_group = generate(model, PROMPTS, max_batch_size=6, **kwargs)
    same_outputs(together, one_group, atol=1e-4)


# ---- (b) fewer CUDA-graph captures -------------------------------------------------------------

def test_kv_bucket_modes():
    assert [rollout_module._kv_bucket(n, 1024) for n in (1, 128, 129, 700)] == [128, 128, 256, 768]
    assert [rollout_module._kv_bucket(n, 1024, "pow2") for n in (1, 129, 300, 700, 1000)] == [
        128, 256, 512, 1024, 1024]
    assert {rollout_module._kv_bucket(n, 1024, "max") for n in (1, 500, 1024)} == {1024}


@pytest.mark.parametrize("mode", ["pow2", "max"])
def test_graph_shapes_of_every_kv_bucket_mode_give_the_same_completions(
        llama, pad_decode_to_buckets, mode):
    """The decode step of each mode, padded as its graphs are (idle rows, keys read up to the
    bucket and masked per row), equals the exact eager decode."""
    kwargs = dict(n=3, max_new_tokens=40, temperature=1.0, top_p=0.9, stop_token_ids=STOPS[:4],
                  seed=2, max_batch_size=7, keep_cache=False)
    exact = generate(llama, PROMPTS, **kwargs)
    pad_decode_to_buckets()
    padded = generate(llama, PROMPTS, cuda_graph_kv_buckets=mode, **kwargs)
    same_outputs(exact, padded)
    with pytest.raises(ValueError, match="cuda_graph_kv_buckets must be one of"):
        generate(llama, PROMPTS, cuda_graph_kv_buckets="log", **kwargs)


def test_a_new_graph_engine_gets_room_for_longer_prompts(llama):
    """A graph engine is built with rows a quarter longer (rounded up to 128 positions) when the
    budget gives as many rows, so a later call with a longer prompt keeps it and its graphs."""
    plan = rollout_module.plan_cache(llama.config, sequences=12, group_size=3, max_len=384,
                                     dtype=torch.float32)
    args = dict(sequences=12, group_size=3, dtype=torch.float32, max_batch_size=None)
    roomy = rollout_module._roomier_plan(plan, llama.config, budget_bytes=None,
                                         max_positions=1000, **args)
    assert (roomy.slots, roomy.max_len) == (12, 512)  # 384 x 1.25 = 480 -> 512
    # capped at the model's positions (rounded up to a kv bucket)
    # no longer than the model's positions (rounded up to a kv bucket): 300 -> 384, as now
    capped = rollout_module._roomier_plan(plan, llama.config, budget_bytes=None, max_positions=300,
                                          **args)
    assert capped == plan
    # a budget that would give fewer rows keeps the exact plan
    tight = rollout_module._roomier_plan(plan, llama.config,
                                         budget_bytes=plan.total_bytes * 11 // 10,
                                         max_positions=1000, **args)
    assert tight == plan


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["linear", "pow2", "max"])
def test_cuda_graph_kv_bucket_modes_equal_eager_on_gpu(mode, pad_decode_to_buckets):
    """Each key-length mode's graphs give the eager decode's completions (at the same padded
    shapes, so the same kernels run); 'max' captures at most one graph per batch bucket."""
    model = _gpu_model()
    kwargs = dict(n=5, max_new_tokens=60, temperature=1.0, top_k=40, stop_token_ids=STOPS[:3],
                  seed=3, max_batch_size=12, keep_cache=False, cuda_graph_kv_buckets=mode)
    graphed = generate(model, PROMPTS, use_cuda_graphs=True, **kwargs)
    pad_decode_to_buckets()
    eager = generate(model, PROMPTS, use_cuda_graphs=False, **kwargs)
    same_outputs(graphed, eager, atol=1e-5)
    batch_buckets = {rollout_module._batch_bucket(b, graphed.stats.slots)
                     for b in range(1, graphed.stats.slots + 1)}
    assert 0 < graphed.stats.cuda_graphs_captured
    if mode == "max":
        assert graphed.stats.cuda_graphs_captured <= len(batch_buckets)


@pytest.mark.gpu
def test_graph_engine_is_kept_for_a_longer_prompt_on_gpu():
    model = _gpu_model(max_position_embeddings=1024)
    kwargs = dict(n=2, max_new_tokens=20, temperature=1.0, stop_token_ids=None, seed=0)
    first = generate(model, [[1, 2, 3]], **kwargs)
    engine = rollout_module._ENGINES[model]
    assert first.stats.cuda_graphs_captured > 0 and engine.max_len == 256  # 128 x 1.25 -> 256
    generate(model, [list(range(1, 150))], **kwargs)  # 168 positions: past the first 128
    assert rollout_module._ENGINES[model] is engine  # kept, with the graphs it captured
    again = generate(model, [[4, 5, 6]], **kwargs)
    assert again.stats.cuda_graphs_captured == 0
    release(model)


# ---- (f) the device guard ------------------------------------------------------------------------

def test_capture_and_replay_run_under_the_engines_device(llama, monkeypatch):
    """torch.cuda.graph and Triton launch on the current GPU: the engine makes its own current."""
    entered = []

    @contextlib.contextmanager
    def fake_cuda_device(device):
        entered.append(("enter", torch.device(device)))
        yield
        entered.append(("exit", torch.device(device)))

    plan = rollout_module.plan_cache(llama.config, sequences=2, group_size=1, max_len=8,
                                     dtype=torch.float32)
    engine = rollout_module._Engine(llama, plan, torch.device("cpu"), torch.float32, False)
    engine.device = torch.device("cuda", 1)  # as if the model lived on the second GPU
    monkeypatch.setattr(rollout_module.torch.cuda, "device", fake_cuda_device)
    monkeypatch.setattr(engine, "_replay_on_device",
                        lambda *args: entered.append(("replay", None)))
    engine._replay(llama, 1, 128, None, None)
    assert entered == [("enter", torch.device("cuda", 1)), ("replay", None),
                       ("exit", torch.device("cuda", 1))]


def test_triton_launch_guard_names_the_tensors_gpu():
    from hirfast.kernels.linear_logprobs import on_device

    class FakeCudaTensor:
        is_cuda = True
        device = torch.device("cuda", 1)

    guard = on_device(FakeCudaTensor())
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert isinstance(on_device(torch.zeros(1)), contextlib.nullcontext)


@pytest.mark.gpu
def test_triton_kernels_run_on_the_tensors_gpu():
    """With cuda:0 current, the kernels on cuda:1 tensors give cuda:1's PyTorch answer."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    from hirfast.kernels.linear_logprobs import linear_logprobs_fwd

    torch.cuda.set_device(0)
    logits = torch.randn(32, 5003, device="cuda:1")
    targets = torch.randint(0, 5003, (32,), device="cuda:1")
    logprob, lse, _ = linear_logprobs_fwd(logits, targets, 1.0)
    expected = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    assert logprob.device == torch.device("cuda", 1)
    assert torch.allclose(logprob, expected, atol=1e-4)
    assert torch.allclose(lse, torch.logsumexp(logits, -1), atol=1e-4)


@pytest.mark.gpu
def test_rollout_on_the_second_gpu_equals_the_first():
    """The model on cuda:1 while cuda:0 is current: capture and replay go to cuda:1."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    kwargs = dict(n=3, max_new_tokens=16, temperature=1.0, stop_token_ids=STOPS[:3], seed=5,
                  keep_cache=False)
    on_first = generate(_gpu_model(device="cuda:0"), PROMPTS, **kwargs)
    torch.cuda.set_device(0)
    model = _gpu_model(device="cuda:1")
    on_second = generate(model, PROMPTS, **kwargs)
    assert on_second.stats.cuda_graphs_captured > 0
    same_outputs(on_first, on_second, atol=1e-4)


# ---- what `hirfast eval` uses: tokens only, progress, more prompts than rows --------------------

MANY_PROMPTS = [[(7 * i + j) % VOCAB for j in range(3 + i % 5)] for i in range(11)]


@pytest.mark.parametrize("padded", [False, True], ids=["exact", "graph_shapes"])
@pytest.mark.parametrize("sampling", [dict(temperature=0.0), dict(temperature=1.0, top_p=0.9),
                                      dict(temperature=0.7, top_k=20)],
                         ids=["greedy", "top_p", "top_k"])
def test_tokens_only_gives_the_same_tokens_without_logprobs(llama, pad_decode_to_buckets, padded,
                                                            sampling):
    """`record_logprobs=False` draws the same tokens (greedy: one argmax; sampled: the same draw)
    and ends the same way, with no log-probs or entropies."""
    if padded:
        pad_decode_to_buckets()
    kwargs = dict(n=2, max_new_tokens=20, stop_token_ids=STOPS, seed=5, max_batch_size=5,
                  keep_cache=False, **sampling)
    recorded = generate(llama, MANY_PROMPTS, **kwargs)
    tokens_only = generate(llama, MANY_PROMPTS, record_logprobs=False, **kwargs)
    for group_a, group_b in zip(recorded, tokens_only):
        for a, b in zip(group_a, group_b):
            assert b.token_ids == a.token_ids and b.finish_reason == a.finish_reason
            assert b.logprobs is None and b.full_logprobs is None and b.entropies is None
    assert {c.finish_reason for g in recorded for c in g} == {"stop", "length"}


def test_one_call_over_more_prompts_than_rows_equals_calls_per_batch(llama):
    """Continuous batching: 11 prompts through 3 rows in one call (a finished row takes the next
    prompt) give each prompt the completion that calls of 3 prompts each give it, greedy, and in
    no more decode steps than those calls together."""
    kwargs = dict(n=1, max_new_tokens=24, temperature=0.0, stop_token_ids=STOPS, seed=0,
                  keep_cache=False, record_logprobs=False)
    one_call = generate(llama, MANY_PROMPTS, max_batch_size=3, **kwargs)
    per_batch, steps = [], 0
    for start in range(0, len(MANY_PROMPTS), 3):
        part = generate(llama, MANY_PROMPTS[start:start + 3], **kwargs)
        per_batch += part
        steps += part.stats.decode_steps
    assert one_call.stats.slots == 3
    assert [g[0].token_ids for g in one_call] == [g[0].token_ids for g in per_batch]
    assert [g[0].finish_reason for g in one_call] == [g[0].finish_reason for g in per_batch]
    assert {g[0].finish_reason for g in one_call} == {"stop", "length"}
    assert one_call.stats.decode_steps <= steps


def test_progress_reports_sequences_as_they_finish(llama):
    finished = []
    result = generate(llama, MANY_PROMPTS, n=2, max_new_tokens=16, temperature=1.0, stop_token_ids=STOPS,
                      seed=3, max_batch_size=4, keep_cache=False, progress=finished.append)
    assert sum(finished) == 2 * len(MANY_PROMPTS)
    assert len(finished) > 1 and all(k >= 1 for k in finished)
    assert len(result) == len(MANY_PROMPTS)
