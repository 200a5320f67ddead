"""hirfast.ops: linear_logprobs and policy_loss, both impls, against a float64 reference.

Every output and every gradient (hidden, weight; through the entropy too) is compared with a
float64 computation of the plain expression, and its error is bounded by twice the error of the
same plain expression run by PyTorch in the input dtype, plus a small atol (flash-attention's
rule). On the CPU, impl="triton" runs the kernels in Triton's interpreter (tests/conftest.py sets
TRITON_INTERPRET=1); the interpreter takes about a second per kernel launch at these shapes, so
the triton cases are a chosen cover rather than the full product.
"""
import math

import pytest
import torch

import hirfast.ops as ops

# On a GPU machine the same tests run the compiled kernels on CUDA tensors.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
IMPLS = ("torch", "triton")
DTYPES = (torch.float32, torch.bfloat16)
ODD_AND_ROUND = ((97, 64, 1000), (97, 64, 1531), (128, 64, 1024))


def dtype_id(dtype):
    return str(dtype).replace("torch.", "")


def randn(*shape, seed, dtype=torch.float32, device=DEVICE):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(device, dtype)


def make_inputs(n, d, v, dtype, seed=0, ignore_every=7, device=DEVICE):
    # weight scaled so that logits have a standard deviation of about 2.4 (sqrt(d) * scale):
    # peaked enough to be realistic, broad enough that every vocab block matters
    hidden = randn(n, d, seed=seed, dtype=dtype, device=device)
    weight = (2.4 / math.sqrt(d)) * randn(v, d, seed=seed + 1, device=device)
    targets = torch.randint(0, v, (n,), generator=torch.Generator().manual_seed(seed + 2))
    if ignore_every:
        targets[::ignore_every] = ops.IGNORE_INDEX
    return hidden, weight.to(dtype), targets.to(device)


def plain_logprobs(hidden, weight, targets, temperature):
    """The contract's plain expression, in the dtype of its inputs (float64 for the reference)."""
    return plain_logprobs_of_logits(hidden @ weight.T, targets, temperature)


def plain_logprobs_of_logits(logits, targets, temperature):
    logits = logits if logits.dtype == torch.float64 else logits.float()
    logp = torch.log_softmax(logits / temperature, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    valid = targets != ops.IGNORE_INDEX
    picked = logp.gather(1, targets.clamp(min=0)[:, None])[:, 0]
    return torch.where(valid, picked, torch.zeros_like(picked)), entropy


def leaf(t, dtype=None):
    return t.detach().to(dtype or t.dtype).clone().requires_grad_(True)


def max_err(x, ref):
    return (x.double() - ref.double()).abs().max().item() if x.numel() else 0.0


def assert_close_to_reference(name, got, baseline, reference, atol):
    err, base_err = max_err(got, reference), max_err(baseline, reference)
    assert err <= 2 * base_err + atol, (
        f"{name}: error {err:.3g} vs float64 exceeds 2 x the same-dtype PyTorch error "
        f"{base_err:.3g} + atol {atol:.1g}")


def assert_fp32_logits_accuracy(impl, dtype, name, got, reference):
    """impl="triton" takes fp32 logits straight from the bf16 matmul (never rounded to bf16), so
    its bf16 log-probs and entropies carry only fp32 rounding: far inside the 2x-baseline bound,
    which the bf16-rounded logits of the plain expression make loose."""
    from hirfast.kernels.linear_logprobs import _MM_HAS_OUT_DTYPE

    if impl != "triton" or dtype != torch.bfloat16 or name not in ("logprob", "entropy"):
        return
    if DEVICE == "cuda" and not _MM_HAS_OUT_DTYPE:
        return
    assert max_err(got, reference) <= 1e-4 * max(1.0, reference.abs().max().item()), name


def atol_for(out_dtype, scale):
    """Slack for rounding the result itself: one bf16 ulp at the largest magnitude for bf16
    results (no kernel can do better than the format it writes), 1e-5 relative for fp32."""
    if out_dtype == torch.bfloat16:
        return 2.0 ** -8 * scale
    return 1e-5 * max(1.0, scale)


def run_logprobs(fn, hidden, weight, targets, temperature, grad_lp, grad_ent):
    h, w = leaf(hidden), leaf(weight)
    lp, ent = fn(h, w, targets, temperature)
    loss = (lp * grad_lp.to(lp.dtype)).sum() + (ent * grad_ent.to(ent.dtype)).sum()
    loss.backward()
    return lp.detach(), ent.detach(), h.grad, w.grad


def three_ways(hidden, weight, targets, temperature, impl, grad_lp, grad_ent, **kwargs):
    """(under test, same-dtype PyTorch, float64) results of run_logprobs."""
    def under_test(h, w, t, temp):
        return ops.linear_logprobs(h, w, t, temperature=temp, return_entropy=True, impl=impl, **kwargs)

    got = run_logprobs(under_test, hidden, weight, targets, temperature, grad_lp, grad_ent)
    base = run_logprobs(plain_logprobs, hidden, weight, targets, temperature, grad_lp, grad_ent)
    ref = run_logprobs(plain_logprobs, hidden.double(), weight.double(), targets, temperature,
                       grad_lp.double(), grad_ent.double())
    return got, base, ref


@pytest.fixture
def small_chunks(monkeypatch):
    """Makes the chunk drivers split N rows into chunks of `rows` (several chunks at N = 97)."""
    def set_rows(rows, vocab, bytes_per_logit):
        monkeypatch.setattr(ops, "_WORKSPACE_BYTES", rows * vocab * bytes_per_logit)
    return set_rows


# ---------------------------------------------------------------------------------------------
# linear_logprobs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("n,d,v", ODD_AND_ROUND)
def test_linear_logprobs_matches_float64(impl, dtype, n, d, v, small_chunks):
    # odd shapes in chunks of 40 rows (forward) / 32 (backward: 2 more bytes per logit) and
    # temperature != 1; the round shape in one chunk at temperature 1
    odd = v % 2 == 1 or n % 2 == 1
    if odd:
        small_chunks(40, v, 4)
    temperature = 0.7 if odd else 1.0
    hidden, weight, targets = make_inputs(n, d, v, dtype)
    grad_lp, grad_ent = randn(n, seed=10), randn(n, seed=11)
    got, base, ref = three_ways(hidden, weight, targets, temperature, impl, grad_lp, grad_ent)
    names = ("logprob", "entropy", "dhidden", "dweight")
    for name, g, b, r in zip(names, got, base, ref):
        assert g.dtype == (torch.float32 if name in ("logprob", "entropy") else dtype), name
        assert_close_to_reference(name, g, b, r, atol_for(g.dtype, r.abs().max().item()))
        assert_fp32_logits_accuracy(impl, dtype, name, g, r)
    assert torch.all(got[0][targets == ops.IGNORE_INDEX] == 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("through", ("logprob", "entropy"))
def test_linear_logprobs_gradient_through_one_output(impl, through):
    # backward kernels specialize on which upstream gradients exist: each alone
    hidden, weight, targets = make_inputs(97, 64, 1531, torch.float32, seed=2)

    def run(fn, h, w):
        h, w = leaf(h), leaf(w)
        lp, ent = fn(h, w, targets, 1.3)
        (lp if through == "logprob" else ent).sum().backward()
        return h.grad, w.grad

    def under_test(h, w, t, temp):
        out = ops.linear_logprobs(h, w, t, temperature=temp, return_entropy=through == "entropy",
                                  impl=impl)
        return (out, None) if through == "logprob" else out

    got = run(under_test, hidden, weight)
    base = run(plain_logprobs, hidden, weight)
    ref = run(plain_logprobs, hidden.double(), weight.double())
    for name, g, b, r in zip(("dhidden", "dweight"), got, base, ref):
        assert_close_to_reference(name, g, b, r, atol_for(g.dtype, r.abs().max().item()))


@pytest.mark.parametrize("impl", IMPLS)
def test_linear_logprobs_non_contiguous_inputs(impl):
    n, d, v = 97, 64, 1000
    hidden, weight, targets = make_inputs(n, d, v, torch.float32, seed=3)
    # every other column of a wider tensor, a transposed weight, every other target
    wide = torch.zeros(n, 2 * d, device=DEVICE)
    wide[:, ::2] = hidden
    hidden_nc = wide[:, ::2]
    weight_nc = weight.T.contiguous().T
    targets_wide = torch.zeros(2 * n, dtype=torch.int64, device=DEVICE)
    targets_wide[::2] = targets
    targets_nc = targets_wide[::2]
    assert not (hidden_nc.is_contiguous() or weight_nc.is_contiguous() or targets_nc.is_contiguous())
    grad_lp, grad_ent = randn(n, seed=12), randn(n, seed=13)
    got = run_logprobs(
        lambda h, w, t, temp: ops.linear_logprobs(h, w, t, temperature=temp, return_entropy=True, impl=impl),
        hidden_nc, weight_nc, targets_nc, 1.0, grad_lp, grad_ent)
    ref = run_logprobs(plain_logprobs, hidden.double(), weight.double(), targets, 1.0,
                       grad_lp.double(), grad_ent.double())
    for name, g, r in zip(("logprob", "entropy", "dhidden", "dweight"), got, ref):
        assert max_err(g, r) < 1e-4, name


def test_all_targets_ignored_gives_zero_logprob_and_gradient():
    hidden, weight, _ = make_inputs(16, 64, 1000, torch.float32)
    targets = torch.full((16,), ops.IGNORE_INDEX, device=DEVICE)
    h, w = leaf(hidden), leaf(weight)
    lp = ops.linear_logprobs(h, w, targets, impl="triton")
    lp.sum().backward()
    assert torch.all(lp == 0) and torch.all(h.grad == 0) and torch.all(w.grad == 0)


def test_no_grad_forward_matches_autograd_forward():
    hidden, weight, targets = make_inputs(97, 64, 1531, torch.bfloat16)
    with torch.no_grad():
        lp, ent = ops.linear_logprobs(hidden, weight, targets, return_entropy=True, impl="torch")
    lp2, ent2 = ops.linear_logprobs(leaf(hidden), leaf(weight), targets, return_entropy=True, impl="torch")
    assert torch.equal(lp, lp2.detach()) and torch.equal(ent, ent2.detach())


def test_impl_auto_is_torch_on_cpu(monkeypatch):
    seen = []
    monkeypatch.setattr(ops, "_rows_for", lambda impl: seen.append(impl) or ops._TorchRows)
    hidden, weight, targets = make_inputs(8, 64, 1000, torch.float32, device="cpu")
    ops.linear_logprobs(hidden, weight, targets)
    assert seen == ["torch"]


def test_triton_off_cuda_without_interpreter_is_a_clear_error(monkeypatch):
    import hirfast.kernels.linear_logprobs as kernel

    monkeypatch.setattr(kernel, "INTERPRETED", False)
    hidden, weight, targets = make_inputs(8, 64, 1000, torch.float32, device="cpu")
    with pytest.raises(ValueError, match=r"impl='triton' needs CUDA tensors; hidden is on cpu"):
        ops.linear_logprobs(hidden, weight, targets, impl="triton")


# ---------------------------------------------------------------------------------------------
# policy_loss
# ---------------------------------------------------------------------------------------------
def plain_policy_loss(lp, ent, advantages, counted, old, ref, cu_seqlens, loss_agg, clip_low,
                      clip_high, kl_coef, kl_estimator, entropy_coef):
    """The contract, spelled out with boolean indexing and a loop over sequences."""
    ratio = torch.exp(lp - (lp.detach() if old is None else old))
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high) * advantages
    per_token = -torch.minimum(unclipped, clipped) - entropy_coef * ent
    kl = torch.zeros_like(lp)
    if ref is not None:
        d = ref - lp
        kl = {"k1": -d, "k2": d * d / 2,
              "k3": (torch.exp(d) - d - 1).clamp(max=ops.K3_MAX)}[kl_estimator]
        per_token = per_token + kl_coef * kl
    if loss_agg == "token-mean":
        loss = per_token[counted].sum() / max(int(counted.sum()), 1)
    else:
        seq_losses = []
        for b in range(len(cu_seqlens) - 1):
            s, e = int(cu_seqlens[b]), int(cu_seqlens[b + 1])
            total = per_token[s:e][counted[s:e]].sum()
            if loss_agg == "seq-mean-token-mean":
                total = total / max(int(counted[s:e].sum()), 1)
            seq_losses.append(total)
        loss = torch.stack(seq_losses).mean()
    metrics = {"clip_fraction": (clipped < unclipped)[counted].double().mean(),
               "kl": kl[counted].mean(), "entropy": ent[counted].mean(), "ratio": ratio[counted].mean()}
    return loss, {k: v.detach() for k, v in metrics.items()}


def policy_case(n, d, v, dtype, seed, with_old, with_ref, with_mask, ref_spread=0.2):
    hidden, weight, targets = make_inputs(n, d, v, dtype, seed=seed)
    advantages = randn(n, seed=seed + 100)
    with torch.no_grad():
        lp64, _ = plain_logprobs(hidden.double(), weight.double(), targets, 1.0)
    # old and ref log-probs near the current ones, so that ratios spread around 1 (a good share
    # clipped on both sides) and the KL is of a realistic size
    old = (lp64 + 0.3 * randn(n, seed=seed + 101, dtype=torch.float64)).float() if with_old else None
    ref = (lp64 + ref_spread * randn(n, seed=seed + 102, dtype=torch.float64)).float() if with_ref else None
    mask = (randn(n, seed=seed + 103) > -0.85) if with_mask else None
    cu_seqlens = torch.tensor([0, 20, 21, 21, 60, n], dtype=torch.int32, device=DEVICE)
    return hidden, weight, targets, advantages, old, ref, mask, cu_seqlens


def check_policy_loss(impl, dtype, loss_agg, kl_estimator, with_old, with_ref, entropy_coef,
                      temperature, with_mask, n=97, d=64, v=1531, seed=5, ref_spread=0.2):
    hidden, weight, targets, adv, old, ref, mask, cu = policy_case(n, d, v, dtype, seed, with_old,
                                                                   with_ref, with_mask, ref_spread)
    kl_coef = 0.1 if with_ref else 0.0
    options = dict(clip_low=0.2, clip_high=0.28, kl_coef=kl_coef, kl_estimator=kl_estimator,
                   entropy_coef=entropy_coef, loss_agg=loss_agg)
    counted = targets != ops.IGNORE_INDEX
    if mask is not None:
        counted &= mask

    h, w = leaf(hidden), leaf(weight)
    loss, metrics = ops.policy_loss(h, w, targets, adv, loss_mask=mask, old_logprobs=old,
                                    ref_logprobs=ref, cu_seqlens=cu, temperature=temperature,
                                    impl=impl, **options)
    loss.backward()
    got = (loss.detach(), h.grad, w.grad)

    def plain(hidden_, weight_, wide):
        h_, w_ = leaf(hidden_), leaf(weight_)
        lp, ent = plain_logprobs(h_, w_, targets, temperature)
        cast = (lambda x: None if x is None else x.to(wide))
        loss_, metrics_ = plain_policy_loss(lp, ent, adv.to(wide), counted, cast(old), cast(ref),
                                            cu, **options)
        loss_.backward()
        return (loss_.detach(), h_.grad, w_.grad), metrics_

    base, _ = plain(hidden, weight, torch.float32)
    ref64, ref_metrics = plain(hidden.double(), weight.double(), torch.float64)
    for name, g, b, r in zip(("loss", "dhidden", "dweight"), got, base, ref64):
        assert_close_to_reference(name, g, b, r, atol_for(g.dtype, r.abs().max().item()))
    count = int(counted.sum())
    # a token whose ratio sits on the clip boundary may fall either side in bf16
    assert abs(metrics["clip_fraction"].item() - ref_metrics["clip_fraction"].item()) <= 2 / count
    assert 0 < ref_metrics["clip_fraction"].item() < 1 or old is None
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    for key in ("kl", "entropy", "ratio"):
        assert math.isclose(metrics[key].item(), ref_metrics[key].item(), rel_tol=tol, abs_tol=tol), key
    for value in metrics.values():
        assert value.dim() == 0 and value.dtype == torch.float32


# impl x loss_agg x estimator cover: the torch twin takes the full product (fast); the triton
# cases cover each loss_agg and estimator, each dtype, old/ref absent and present, masks,
# entropy_coef and temperature != 1, in 6 interpreter runs.
TRITON_POLICY_CASES = [
    # dtype, loss_agg, kl_estimator, old, ref, entropy_coef, temperature, mask
    (torch.float32, "token-mean", "k3", True, True, 0.01, 1.0, False),
    (torch.bfloat16, "seq-mean-token-mean", "k1", True, False, 0.0, 0.7, True),
    (torch.float32, "seq-mean-token-sum", "k2", False, True, 0.05, 1.3, False),
    (torch.bfloat16, "token-mean", "k2", False, False, 0.0, 1.0, True),
    (torch.bfloat16, "seq-mean-token-sum", "k3", True, True, 0.02, 1.0, True),
    (torch.float32, "seq-mean-token-mean", "k1", True, True, 0.0, 0.8, False),
]


@pytest.mark.parametrize("case", TRITON_POLICY_CASES,
                         ids=lambda c: f"{dtype_id(c[0])}-{c[1]}-{c[2]}-old{int(c[3])}-ref{int(c[4])}")
def test_policy_loss_triton_matches_float64(case):
    dtype, loss_agg, est, with_old, with_ref, entropy_coef, temperature, mask = case
    check_policy_loss("triton", dtype, loss_agg, est, with_old, with_ref, entropy_coef,
                      temperature, mask)


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_policy_loss_k3_clamp_matches_float64(impl):
    # log pi_ref - log pi spread by 3 nats: a good share of tokens have k3 above K3_MAX (clamped,
    # no gradient); the reference clamps with autograd, so values and gradients must agree.
    hidden, weight, targets, _, _, ref, _, _ = policy_case(97, 64, 1531, torch.float32, 5, False,
                                                           True, False, ref_spread=3.0)
    lp64, _ = plain_logprobs(hidden.double(), weight.double(), targets, 1.0)
    d = ref.double() - lp64
    assert ((d.exp() - d - 1) > ops.K3_MAX).sum() >= 5
    check_policy_loss(impl, torch.float32, "token-mean", "k3", True, True, 0.0, 1.0, False,
                      ref_spread=3.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("loss_agg", ops.LOSS_AGGS)
@pytest.mark.parametrize("kl_estimator", ops.KL_ESTIMATORS)
def test_policy_loss_torch_matches_float64(dtype, loss_agg, kl_estimator):
    check_policy_loss("torch", dtype, loss_agg, kl_estimator, True, True, 0.01, 0.9, True)


@pytest.mark.parametrize("with_old,with_ref", [(False, False), (True, False), (False, True)])
def test_policy_loss_torch_old_and_ref_absent(with_old, with_ref):
    check_policy_loss("torch", torch.float32, "token-mean", "k3", with_old, with_ref, 0.0, 1.0, False)


def test_policy_loss_in_chunks_matches_one_chunk(small_chunks):
    args = make_inputs(97, 64, 1000, torch.float32, seed=6)
    adv = randn(97, seed=7)

    def run():
        h, w = leaf(args[0]), leaf(args[1])
        loss, metrics = ops.policy_loss(h, w, args[2], adv, entropy_coef=0.01, impl="triton")
        loss.backward()
        return [loss.detach(), h.grad, w.grad, *metrics.values()]

    whole = run()
    small_chunks(30, 1000, 8)
    for a, b in zip(whole, run()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def test_policy_loss_without_grad_and_module_agree():
    hidden, weight, targets, adv, old, ref, mask, cu = policy_case(97, 64, 1000, torch.float32, 8,
                                                                   True, True, True)
    options = dict(kl_coef=0.05, kl_estimator="k2", loss_agg="seq-mean-token-mean", impl="torch")
    loss, metrics = ops.policy_loss(leaf(hidden), leaf(weight), targets, adv, loss_mask=mask,
                                    old_logprobs=old, ref_logprobs=ref, cu_seqlens=cu, **options)
    with torch.no_grad():
        loss_ng, _ = ops.policy_loss(hidden, weight, targets, adv, loss_mask=mask, old_logprobs=old,
                                     ref_logprobs=ref, cu_seqlens=cu, **options)
    module = ops.PolicyLoss(**options)
    loss_m, metrics_m = module(hidden, weight, targets, adv, loss_mask=mask, old_logprobs=old,
                               ref_logprobs=ref, cu_seqlens=cu)
    assert not loss_ng.requires_grad and loss.requires_grad
    assert torch.equal(loss.detach(), loss_ng) and torch.equal(loss_ng, loss_m)
    assert all(torch.equal(metrics[k], metrics_m[k]) for k in metrics)
    assert "kl_estimator='k2'" in repr(module)


def test_policy_loss_scales_by_upstream_gradient_and_refuses_a_second_backward():
    hidden, weight, targets = make_inputs(33, 64, 1000, torch.float32, seed=9)
    adv = randn(33, seed=9)
    h1, w1, h2, w2 = leaf(hidden), leaf(weight), leaf(hidden), leaf(weight)
    ops.policy_loss(h1, w1, targets, adv, impl="torch")[0].backward()
    loss2, _ = ops.policy_loss(h2, w2, targets, adv, impl="torch")
    (3.0 * loss2).backward(retain_graph=True)
    assert torch.allclose(3.0 * h1.grad, h2.grad) and torch.allclose(3.0 * w1.grad, w2.grad)
    with pytest.raises(RuntimeError, match="backward ran twice"):
        loss2.backward()


def test_policy_loss_nothing_counted_is_zero():
    hidden, weight, targets = make_inputs(10, 64, 1000, torch.float32)
    h, w = leaf(hidden), leaf(weight)
    loss, metrics = ops.policy_loss(h, w, targets, torch.ones(10, device=DEVICE),
                                    loss_mask=torch.zeros(10, dtype=torch.bool, device=DEVICE),
                                    impl="torch")
    loss.backward()
    assert loss.item() == 0 and torch.all(h.grad == 0) and torch.all(w.grad == 0)
    assert all(v.item() == 0 for v in metrics.values())


# ---------------------------------------------------------------------------------------------
# at scale: N = 16,384, D = 4,096, V = 151,936 in bf16 on a GPU (the same check runs small here)
# ---------------------------------------------------------------------------------------------
def chunked_plain(hidden, weight, targets, temperature, loss_of, wide, rows):
    """The plain expression for loss = loss_of(logprob, entropy), row chunk by row chunk (its
    whole [N, V] logits would not fit beside the float64 reference).

    wide=torch.float64 gives the reference; wide=None the same-dtype PyTorch baseline, whose
    weight gradient is summed over chunks in fp32 and rounded once, as the one matmul of the
    unchunked expression does. Returns (logprob, entropy, loss, dhidden, dweight).
    """
    cast = (lambda x: x.to(wide)) if wide is not None else (lambda x: x)
    n = hidden.shape[0]
    weight_w = cast(weight)
    spans = [slice(s, min(s + rows, n)) for s in range(0, n, rows)]
    with torch.no_grad():
        parts = [plain_logprobs(cast(hidden[sp]), weight_w, targets[sp], temperature) for sp in spans]
    logprob = torch.cat([p[0] for p in parts]).requires_grad_()
    entropy = torch.cat([p[1] for p in parts]).requires_grad_()
    loss = loss_of(logprob, entropy)
    grad_lp, grad_ent = torch.autograd.grad(loss, (logprob, entropy))
    dhidden = torch.empty(hidden.shape, dtype=wide or hidden.dtype, device=hidden.device)
    dweight = torch.zeros(weight.shape, dtype=wide or torch.float32, device=weight.device)
    for sp in spans:
        h = leaf(cast(hidden[sp]))
        logits = h @ weight_w.T
        lp, ent = plain_logprobs_of_logits(logits, targets[sp], temperature)
        dh, dlogits = torch.autograd.grad((lp * grad_lp[sp]).sum() + (ent * grad_ent[sp]).sum(),
                                          (h, logits))
        dhidden[sp] = dh
        dweight += dlogits.to(dweight.dtype).T @ h.detach().to(dweight.dtype)
    return logprob.detach(), entropy.detach(), loss.detach(), dhidden, dweight.to(wide or weight.dtype)


def check_at_scale(op, impl, n, d, v, dtype, rows):
    hidden, weight, targets = make_inputs(n, d, v, dtype, seed=20)
    temperature = 0.9
    if op == "linear_logprobs":
        grad_lp, grad_ent = randn(n, seed=21), randn(n, seed=22)

        def loss_of(lp, ent):
            return (lp * grad_lp.to(lp.dtype)).sum() + (ent * grad_ent.to(ent.dtype)).sum()

        def under_test(h, w):
            lp, ent = ops.linear_logprobs(h, w, targets, temperature=temperature,
                                          return_entropy=True, impl=impl)
            return lp, ent, loss_of(lp, ent)
    else:
        # old/ref log-probs: the torch twin's log-probs plus noise (inputs only; the expected
        # values come from the float64 reference)
        with torch.no_grad():
            lp0 = ops.linear_logprobs(hidden, weight, targets, temperature=temperature, impl="torch")
        old, ref = lp0 + 0.3 * randn(n, seed=23), lp0 + 0.2 * randn(n, seed=24)
        advantages, mask = randn(n, seed=25), randn(n, seed=26) > -0.85
        counted = mask & (targets != ops.IGNORE_INDEX)
        cu_seqlens = torch.linspace(0, n, 17, device=hidden.device).round().to(torch.int32)
        options = dict(clip_low=0.2, clip_high=0.28, kl_coef=0.05, kl_estimator="k3",
                       entropy_coef=0.01, loss_agg="seq-mean-token-mean")

        def loss_of(lp, ent):
            return plain_policy_loss(lp, ent, advantages.to(lp.dtype), counted, old.to(lp.dtype),
                                     ref.to(lp.dtype), cu_seqlens, **options)[0]

        def under_test(h, w):
            loss, _ = ops.policy_loss(h, w, targets, advantages, loss_mask=mask, old_logprobs=old,
                                      ref_logprobs=ref, cu_seqlens=cu_seqlens,
                                      temperature=temperature, impl=impl, **options)
            return None, None, loss

    h, w = leaf(hidden), leaf(weight)
    lp, ent, loss = under_test(h, w)
    loss.backward()
    got = (lp, ent, loss.detach(), h.grad, w.grad)
    base = chunked_plain(hidden, weight, targets, temperature, loss_of, None, rows)
    ref64 = chunked_plain(hidden, weight, targets, temperature, loss_of, torch.float64, rows)
    for name, g, b, r in zip(("logprob", "entropy", "loss", "dhidden", "dweight"), got, base, ref64):
        if g is not None:
            assert_close_to_reference(name, g.detach(), b, r, atol_for(g.dtype, r.abs().max().item()))
            assert_fp32_logits_accuracy(impl, dtype, name, g.detach(), r)


@pytest.mark.parametrize("op", ("linear_logprobs", "policy_loss"))
def test_at_scale_check_runs_small(op):
    check_at_scale(op, "triton", 97, 64, 1531, torch.bfloat16, rows=40)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("op", ("linear_logprobs", "policy_loss"))
def test_at_real_scale(op, dtype, impl):
    check_at_scale(op, impl, 16384, 4096, 151936, dtype, rows=256)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def _valid_args():
    # argument checks run before any device work: CPU tensors on every machine
    return make_inputs(12, 64, 1000, torch.float32, device="cpu")


BAD_LOGPROB_INPUTS = [
    (lambda h, w, t: (h[None], w, t, {}), ValueError, r"hidden must be 2-D \[N, D\]; got shape \(1, 12, 64\)"),
    (lambda h, w, t: (h, w[:, :32], t, {}), ValueError, r"weight must be 2-D \[V, D\] with D = hidden.shape\[1\] = 64; got shape \(1000, 32\)"),
    (lambda h, w, t: (h, w, t[:5], {}), ValueError, r"targets must be 1-D \[N\] with N = hidden.shape\[0\] = 12; got shape \(5,\)"),
    (lambda h, w, t: (h.half(), w.half(), t, {}), TypeError, r"hidden must be float32 or bfloat16; got torch.float16"),
    (lambda h, w, t: (h, w.bfloat16(), t, {}), TypeError, r"weight dtype torch.bfloat16 differs from hidden dtype torch.float32"),
    (lambda h, w, t: (h, w, t.int(), {}), TypeError, r"targets must be int64; got torch.int32"),
    (lambda h, w, t: (h, w, t.index_fill(0, torch.tensor([4]), 1000), {}), ValueError,
     r"targets\[4\] = 1000 is out of range: expected 0..999 \(weight.shape\[0\] = 1000\) or -100 to ignore"),
    (lambda h, w, t: (h, w, t.index_fill(0, torch.tensor([2]), -3), {}), ValueError, r"targets\[2\] = -3 is out of range"),
    (lambda h, w, t: (h, w, t, {"temperature": 0.0}), ValueError, r"temperature must be a finite number > 0; got 0.0"),
    (lambda h, w, t: (h, w, t, {"temperature": float("nan")}), ValueError, r"temperature must be a finite number > 0; got nan"),
    (lambda h, w, t: (h, w, t, {"impl": "cuda"}), ValueError, r"impl must be one of \('auto', 'triton', 'torch'\); got 'cuda'"),
    (lambda h, w, t: (h.numpy(), w, t, {}), TypeError, r"hidden must be a torch.Tensor; got ndarray"),
    (lambda h, w, t: (h, w[:0], t, {}), ValueError, r"weight has an empty vocabulary"),
]


@pytest.mark.parametrize("make,exc,message", BAD_LOGPROB_INPUTS)
def test_linear_logprobs_rejects_bad_input(make, exc, message):
    hidden, weight, targets, kwargs = make(*_valid_args())
    with pytest.raises(exc, match=message):
        ops.linear_logprobs(hidden, weight, targets, **kwargs)
    with pytest.raises(exc, match=message):
        ops.policy_loss(hidden, weight, targets, torch.zeros(12), **kwargs)


BAD_POLICY_INPUTS = [
    ({"advantages": torch.zeros(11)}, ValueError, r"advantages must be 1-D \[N\] with N = hidden.shape\[0\] = 12; got shape \(11,\)"),
    ({"advantages": torch.zeros(12, dtype=torch.int64)}, TypeError, r"advantages must be a floating-point tensor; got torch.int64"),
    ({"old_logprobs": torch.zeros(12, 1)}, ValueError, r"old_logprobs must be 1-D \[N\]"),
    ({"ref_logprobs": torch.zeros(3)}, ValueError, r"ref_logprobs must be 1-D \[N\]"),
    ({"loss_mask": torch.ones(13, dtype=torch.bool)}, ValueError, r"loss_mask must be 1-D \[N\]"),
    ({"loss_agg": "sum"}, ValueError, r"loss_agg must be one of"),
    ({"kl_estimator": "k4"}, ValueError, r"kl_estimator must be one of \('k1', 'k2', 'k3'\); got 'k4'"),
    ({"kl_coef": 0.1}, ValueError, r"kl_coef = 0.1 needs ref_logprobs"),
    ({"clip_low": 1.0}, ValueError, r"clip_low must be in \[0.0, 1.0\); got 1.0"),
    ({"clip_high": -0.1}, ValueError, r"clip_high must be in \[0.0, inf\); got -0.1"),
    ({"entropy_coef": float("inf")}, ValueError, r"entropy_coef must be a finite number; got inf"),
    ({"loss_agg": "seq-mean-token-sum"}, ValueError, r"loss_agg = 'seq-mean-token-sum' needs cu_seqlens"),
    ({"loss_agg": "seq-mean-token-mean", "cu_seqlens": torch.tensor([0, 5, 12])}, TypeError,
     r"cu_seqlens must be int32; got torch.int64"),
    ({"loss_agg": "seq-mean-token-mean", "cu_seqlens": torch.tensor([0, 5, 11], dtype=torch.int32)},
     ValueError, r"cu_seqlens must start at 0 and end at N = 12; got 0 .. 11"),
    ({"loss_agg": "seq-mean-token-mean", "cu_seqlens": torch.tensor([0, 7, 5, 12], dtype=torch.int32)},
     ValueError, r"cu_seqlens must be non-decreasing; cu_seqlens\[2\] = 5 < cu_seqlens\[1\] = 7"),
    ({"cu_seqlens": torch.tensor([[0, 12]], dtype=torch.int32)}, ValueError, r"cu_seqlens must be 1-D \[B\+1\]"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD_POLICY_INPUTS)
def test_policy_loss_rejects_bad_input(kwargs, exc, message):
    hidden, weight, targets = _valid_args()
    kwargs = dict(kwargs)
    advantages = kwargs.pop("advantages", torch.zeros(12))
    with pytest.raises(exc, match=message):
        ops.policy_loss(hidden, weight, targets, advantages, **kwargs)
