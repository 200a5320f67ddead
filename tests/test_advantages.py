"""Advantage estimators against values computed by hand."""
import math

import pytest
import torch

from hirfast.advantages import compute_advantages, masked_whiten, reward_to_go


def _mask(lengths, width=None):
    width = width or max(lengths)
    return torch.tensor([[j < n for j in range(width)] for n in lengths])


def test_reinforce_pp_whitens_over_all_tokens_of_the_batch():
    # Rows of 2 and 3 tokens, rewards 1 and 0: returns are [1, 1] and [0, 0, 0].
    # Over the 5 tokens: mean 0.4, unbiased variance (2 * 0.36 + 3 * 0.16) / 4 = 0.3.
    adv = compute_advantages("reinforce++", torch.tensor([1.0, 0.0]), [0, 1], _mask([2, 3]))
    std = math.sqrt(0.3 + 1e-8)
    expected = torch.tensor([[0.6 / std, 0.6 / std, 0.0], [-0.4 / std] * 3])
    torch.testing.assert_close(adv, expected)


def test_reinforce_pp_kl_penalty_enters_the_reward_to_go():
    # One row of 3 tokens, reward 1, kl = [0.5, 0.0, 1.0], beta = 0.1:
    # token rewards [-0.05, 0, 1 - 0.1] -> returns [0.85, 0.9, 0.9]; second row reward 0,
    # kl 0 -> returns [0, 0]. Whitened over the 5 tokens.
    kl = torch.tensor([[0.5, 0.0, 1.0], [0.0, 0.0, 0.0]])
    adv = compute_advantages("reinforce++", torch.tensor([1.0, 0.0]), [0, 0], _mask([3, 2]),
                             kl=kl, kl_coef=0.1)
    returns = [0.85, 0.9, 0.9, 0.0, 0.0]
    mean = sum(returns) / 5
    var = sum((r - mean) ** 2 for r in returns) / 4
    std = math.sqrt(var + 1e-8)
    expected = torch.tensor([[(r - mean) / std for r in returns[:3]],
                             [(returns[3] - mean) / std, (returns[4] - mean) / std, 0.0]])
    torch.testing.assert_close(adv, expected)


def test_reinforce_pp_baseline_subtracts_the_group_mean_then_whitens():
    # Group 0: rewards 1, 0, 1 (mean 2/3); group 1: rewards 0, 1 (mean 1/2). One token each:
    # centred scores 1/3, -2/3, 1/3, -1/2, 1/2 (mean 0), unbiased var = (3 * 1/9 ... ) / 4.
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    adv = compute_advantages("reinforce++-baseline", rewards, [0, 0, 0, 7, 7], _mask([1] * 5))
    centred = [1 / 3, -2 / 3, 1 / 3, -1 / 2, 1 / 2]
    var = sum(c * c for c in centred) / 4
    expected = torch.tensor([[c / math.sqrt(var + 1e-8)] for c in centred])
    torch.testing.assert_close(adv, expected)


def test_reinforce_pp_baseline_broadcasts_the_score_to_every_token():
    adv = compute_advantages("reinforce++-baseline", torch.tensor([1.0, 0.0]), [0, 0], _mask([2, 1]))
    # centred scores +0.5 (2 tokens) and -0.5 (1 token): token values 0.5, 0.5, -0.5,
    # mean 1/6, unbiased var = ((1/3)^2 * 2 + (2/3)^2) / 2 = 1/3
    std = math.sqrt(1 / 3 + 1e-8)
    expected = torch.tensor([[(0.5 - 1 / 6) / std] * 2, [(-0.5 - 1 / 6) / std, 0.0]])
    torch.testing.assert_close(adv, expected)


def test_grpo_standardizes_within_each_group():
    # Group 0: rewards 1, 0, 0 -> mean 1/3, unbiased std sqrt(1/3); group 1: 1, 1 -> std 0.
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    adv = compute_advantages("grpo", rewards, [3, 3, 3, 5, 5], _mask([2, 1, 1, 1, 2]))
    s = math.sqrt(1 / 3)
    a, b = (1 - 1 / 3) / (s + 1e-6), (0 - 1 / 3) / (s + 1e-6)
    expected = torch.tensor([[a, a], [b, 0.0], [b, 0.0], [0.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(adv, expected)


def test_a_lone_sample_carries_no_contrast():
    for est in ("grpo", "reinforce++-baseline"):
        adv = compute_advantages(est, torch.tensor([1.0, 0.0, 1.0]), [0, 0, 1], _mask([1, 1, 1]))
        assert adv[2, 0] == 0.0
    assert torch.equal(masked_whiten(torch.tensor([[3.0]]), _mask([1])), torch.zeros(1, 1))


def test_all_equal_rewards_give_zero_advantages():
    for est in ("reinforce++", "reinforce++-baseline", "grpo"):
        adv = compute_advantages(est, torch.zeros(4), [0, 0, 1, 1], _mask([2, 3, 1, 2]))
        assert torch.count_nonzero(adv) == 0, est


def test_reward_to_go():
    r = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 9.0]])
    torch.testing.assert_close(reward_to_go(r, _mask([3, 2])),
                               torch.tensor([[6.0, 5.0, 3.0], [9.0, 5.0, 0.0]]))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        compute_advantages("ppo", torch.zeros(2), [0, 0], _mask([1, 1]))
    with pytest.raises(ValueError, match="at least one response token"):
        compute_advantages("grpo", torch.zeros(2), [0, 0], _mask([1, 0], width=1))
    with pytest.raises(ValueError, match="group_ids"):
        compute_advantages("grpo", torch.zeros(2), [0], _mask([1, 1]))


def test_replay_with_the_original_instructions_logprobs_gets_its_sources_kl_penalty():
    # An original (reward 0) and its replay (reward 1) of the same 2-token response. As published,
    # the replay keeps log pi_old(y|x) and log pi_ref(y|x), so its per-token KL penalty is the
    # original's. d = ref - old = [5, -1]: k3 = [min(e^5 - 6, 10), e^-1] = [10, 0.3679].
    from hirfast.rl_loss import K3_MAX, token_kl

    old = torch.tensor([-1.0, -2.0])
    ref = old + torch.tensor([5.0, -1.0])
    k3 = token_kl(ref, old, "k3")
    assert k3.tolist() == pytest.approx([K3_MAX, math.exp(-1)])
    kl = torch.stack([k3, k3])  # original, replay
    adv = compute_advantages("reinforce++", torch.tensor([0.0, 1.0]), [0, 0], _mask([2, 2]),
                             kl=kl, kl_coef=0.1)
    # token rewards: original [-1, -0.03679], replay [-1, 1 - 0.03679]; returns-to-go below
    e = 0.1 * math.exp(-1)
    returns = [-1 - e, -e, -1 + 1 - e, 1 - e]
    mean = sum(returns) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3 + 1e-8)
    expected = torch.tensor([[(r - mean) / std for r in returns[:2]],
                             [(r - mean) / std for r in returns[2:]]])
    torch.testing.assert_close(adv, expected)
