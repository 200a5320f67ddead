"""hirfast.rl_loss on hand-built batches: the split loss (originals and replays apart) against one
plain policy_loss call, the replay ratio and clip with the original instruction's pi_old, the k3
clamp, and disabling dropout."""
import math

import pytest
import torch

from hirfast.ops import K3_MAX, policy_loss
from hirfast.rl_loss import Parts, disable_dropout, micro_batch_loss, token_kl

D, V = 8, 11


def _batch(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(lengths)
    hidden = torch.randn(n, D, generator=g, dtype=torch.float64).float()
    weight = torch.randn(V, D, generator=g, dtype=torch.float64).float()
    targets = torch.randint(0, V, (n,), generator=g)
    return hidden, weight, targets


def _rows(t, lengths):
    out, start = [], 0
    for n in lengths:
        out.append(t[start:start + n])
        start += n
    return out


def _lp(hidden, weight, targets):
    return torch.log_softmax(hidden.double() @ weight.double().T, -1).gather(
        1, targets[:, None]).squeeze(1).float()


@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_split_loss_equals_one_call_over_all_tokens(loss_agg):
    lengths, is_replay = [3, 2, 4, 1], [False, True, False, True]
    hidden, weight, targets = _batch(lengths)
    g = torch.Generator().manual_seed(1)
    adv = torch.randn(sum(lengths), generator=g)
    old = _lp(hidden, weight, targets) + 0.3 * torch.randn(sum(lengths), generator=g)
    ref = _lp(hidden, weight, targets) + 0.5 * torch.randn(sum(lengths), generator=g)
    options = dict(clip_low=0.2, clip_high=0.28, kl_coef=0.1, kl_estimator="k3",
                   entropy_coef=0.01, loss_agg=loss_agg, impl="torch")

    h1, w1 = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    cu = torch.tensor([0] + lengths).cumsum(0).to(torch.int32)
    whole, _ = policy_loss(h1, w1, targets, adv, old_logprobs=old, ref_logprobs=ref,
                           cu_seqlens=cu, **options)
    whole.backward()

    h2, w2 = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    parts = Parts()
    split = micro_batch_loss(h2, w2, targets, lengths, is_replay, _rows(adv, lengths),
                             _rows(old, lengths), _rows(ref, lengths),
                             tokens_total=sum(lengths), rows_total=len(lengths), sums=parts,
                             **options)
    split.backward()
    assert torch.allclose(split, whole, atol=1e-6)
    assert torch.allclose(h2.grad, h1.grad, atol=1e-6) and torch.allclose(w2.grad, w1.grad, atol=1e-6)
    assert (parts.original.tokens, parts.replay.tokens) == (7, 3)


def test_replay_ratio_and_clip_use_the_original_instructions_pi_old():
    # One original (on-policy: old None) and one replay whose pi_old(y|x) is log(1.5) below
    # pi_theta(y|x'): ratio 1.5 on every replay token, above 1 + clip_high, so with A > 0 every
    # replay token is clipped and gets no gradient, while the original's ratio is exactly 1.
    lengths, is_replay = [3, 4], [False, True]
    hidden, weight, targets = _batch(lengths, seed=2)
    lp = _lp(hidden, weight, targets)
    adv = torch.ones(7)
    old = [None, lp[3:] - math.log(1.5)]
    h = hidden.clone().requires_grad_()
    parts = Parts()
    loss = micro_batch_loss(h, weight, targets, lengths, is_replay, _rows(adv, lengths), old, None,
                            tokens_total=7, rows_total=2, sums=parts, clip_low=0.2,
                            clip_high=0.2, impl="torch")
    loss.backward()
    assert parts.replay.mean("ratio") == pytest.approx(1.5, rel=1e-5)
    assert parts.replay.mean("clipped") == 1.0
    assert parts.original.mean("ratio") == pytest.approx(1.0) and parts.original.mean("clipped") == 0
    assert torch.count_nonzero(h.grad[3:]) == 0 and torch.count_nonzero(h.grad[:3]) > 0
    # With ratio 1.1 (inside the clip range) the same replay is not clipped.
    parts = Parts()
    micro_batch_loss(hidden, weight, targets, lengths, is_replay, _rows(adv, lengths),
                     [None, lp[3:] - math.log(1.1)], None, tokens_total=7, rows_total=2,
                     sums=parts, clip_low=0.2, clip_high=0.2, impl="torch")
    assert parts.replay.mean("clipped") == 0.0
    assert parts.replay.mean("ratio") == pytest.approx(1.1, rel=1e-5)


def test_a_part_must_not_mix_on_policy_and_given_pi_old():
    lengths = [2, 2]
    hidden, weight, targets = _batch(lengths)
    with pytest.raises(ValueError, match="mixes"):
        micro_batch_loss(hidden, weight, targets, lengths, [True, True], _rows(torch.ones(4), lengths),
                         [None, torch.zeros(2)], None, tokens_total=4, rows_total=2, sums=Parts(),
                         impl="torch")


def test_k3_is_clamped_in_the_reward_and_in_the_loss():
    ref = torch.tensor([0.0, -1.0, 5.0, 2.0])
    logp = torch.tensor([0.0, 0.0, 0.0, 0.0])
    # d = ref - logp: 0, -1, 5, 2 -> e^d - d - 1 = 0, e^-1, e^5 - 6 = 142.4 (clamped), e^2 - 3
    expected = [0.0, math.exp(-1), K3_MAX, math.exp(2) - 3]
    assert torch.allclose(token_kl(ref, logp, "k3"), torch.tensor(expected))
    assert torch.allclose(token_kl(ref, logp, "k2"), 0.5 * ref ** 2)
    assert torch.allclose(token_kl(ref, logp, "k1"), -ref)
    with pytest.raises(ValueError, match="k4"):
        token_kl(ref, logp, "k4")

    # In the loss: the clamped token gives value K3_MAX and no gradient; the others the exact one.
    hidden, weight, targets = _batch([4], seed=3)
    lp = _lp(hidden, weight, targets)
    refs = lp + torch.tensor([0.5, -2.0, 6.0, 1.0])
    h = hidden.clone().requires_grad_()
    loss, metrics = policy_loss(h, weight, targets, torch.zeros(4), ref_logprobs=refs,
                                kl_coef=1.0, kl_estimator="k3", impl="torch")
    loss.backward()
    d = torch.tensor([0.5, -2.0, 6.0, 1.0])
    values = (d.exp() - d - 1).clamp(max=K3_MAX)
    assert float(metrics["kl"]) == pytest.approx(float(values.mean()), rel=1e-5)
    assert torch.count_nonzero(h.grad[2]) == 0 and torch.count_nonzero(h.grad[[0, 1, 3]]) > 0
    # the unclamped tokens' gradient: autograd of the plain k3 on them
    h2 = hidden.clone().requires_grad_()
    logits = h2 @ weight.T
    lp2 = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    dd = refs - lp2
    ((dd.exp() - dd - 1)[[0, 1, 3]].sum() / 4).backward()
    assert torch.allclose(h.grad, h2.grad, atol=1e-5)


def test_disable_dropout_zeroes_modules_and_functional_rates():
    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention_dropout = 0.3
            self.drop = torch.nn.Dropout(0.1)
            self.scale = 0.5  # not a dropout: left alone

    model = torch.nn.Sequential(Attention(), torch.nn.Dropout(0.0))
    assert disable_dropout(model) == 2
    assert model[0].attention_dropout == 0.0 and model[0].drop.p == 0.0 and model[0].scale == 0.5
    model.train()
    x = torch.ones(4, 16)
    assert torch.equal(model[0].drop(x), x)
    assert disable_dropout(model) == 0
