"""AR decoding: KV cache = full recomputation, CFG coefficient 1 = conditional decoding, seeded sampling,
top-k / top-p filters, and the errors raised before decoding."""

from __future__ import annotations

import pytest
import torch
from lm_fixtures import CARD, conditions, tiny_model

from instrumentgen.generate.ar import generate_ar
from instrumentgen.generate.sampling import SamplingSettings, guide, sample


@pytest.mark.parametrize("cfg_coef", [1.0, 3.0])
def test_kv_cache_decoding_equals_full_recomputation_under_greedy(cfg_coef: float):
    model, cond = tiny_model(), conditions(3)
    settings = SamplingSettings(temperature=0.0, cfg_coef=cfg_coef)
    cached = generate_ar(model, cond, 12, settings, use_cache=True)
    full = generate_ar(model, cond, 12, settings, use_cache=False)
    assert cached.shape == (3, 4, 12)
    assert torch.equal(cached, full)
    assert len(torch.unique(cached)) > 3  # not a degenerate constant output


class _ForcedGuidance(SamplingSettings):
    """Settings that run the batched [cond; null] pass even with coefficient 1."""

    @property
    def guided(self) -> bool:
        return True


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cfg_with_coefficient_one_equals_conditional_decoding(temperature: float):
    model, cond = tiny_model(), conditions(4)
    plain = generate_ar(
        model,
        cond,
        10,
        SamplingSettings(temperature=temperature, top_k=0, cfg_coef=1.0),
        torch.Generator().manual_seed(7),
    )
    batched = generate_ar(
        model,
        cond,
        10,
        _ForcedGuidance(temperature=temperature, top_k=0, cfg_coef=1.0),
        torch.Generator().manual_seed(7),
    )
    assert torch.equal(plain, batched)


def test_guidance_changes_the_output_and_combines_linearly():
    c, u = torch.randn(5, CARD), torch.randn(5, CARD)
    assert torch.equal(guide(c, u, 1.0), c)
    torch.testing.assert_close(guide(c, u, 3.0), u + 3.0 * (c - u))
    model, cond = tiny_model(), conditions(4)
    greedy1 = generate_ar(model, cond, 10, SamplingSettings(temperature=0.0, cfg_coef=1.0))
    greedy5 = generate_ar(model, cond, 10, SamplingSettings(temperature=0.0, cfg_coef=5.0))
    assert not torch.equal(greedy1, greedy5)


def test_same_seed_same_codes_and_another_seed_other_codes():
    model, cond = tiny_model(), conditions(4)
    settings = SamplingSettings(temperature=1.0, top_k=0, cfg_coef=2.0)
    a = generate_ar(model, cond, 12, settings, torch.Generator().manual_seed(3))
    b = generate_ar(model, cond, 12, settings, torch.Generator().manual_seed(3))
    c = generate_ar(model, cond, 12, settings, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) < CARD


def test_top_k_and_top_p_keep_only_the_allowed_tokens():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0, -2.0]]).repeat(2000, 1)
    g = torch.Generator().manual_seed(0)
    drawn = sample(logits, SamplingSettings(top_k=2, cfg_coef=1.0), g)
    assert set(drawn.tolist()) == {0, 1}
    probs = (
        logits[0].softmax(-1).tolist()
    )  # top-p 0.8: token 0 (0.71) alone is below 0.8, so tokens 0 and 1 stay
    assert probs[0] < 0.8 < probs[0] + probs[1]
    drawn = sample(logits, SamplingSettings(top_k=0, top_p=0.8, cfg_coef=1.0), g)
    assert set(drawn.tolist()) == {0, 1}
    share = (drawn == 0).float().mean().item()
    assert share == pytest.approx(probs[0] / (probs[0] + probs[1]), abs=0.04)
    assert torch.equal(
        sample(logits[:3], SamplingSettings(temperature=0.0), None), torch.zeros(3, dtype=torch.long)
    )


def test_top_k_draws_follow_the_renormalised_distribution():
    logits = torch.tensor([[1.0, 3.0, 0.5, 2.0, -1.0]]).repeat(6000, 1)
    g = torch.Generator().manual_seed(1)
    drawn = sample(logits, SamplingSettings(top_k=3, cfg_coef=1.0), g)
    expected = torch.zeros(5)
    expected[[1, 3, 0]] = logits[0, [1, 3, 0]].softmax(-1)
    shares = torch.bincount(drawn, minlength=5).float() / len(drawn)
    torch.testing.assert_close(shares, expected, atol=0.02, rtol=0)
    # top-k then top-p over the k kept: softmax of (3, 2, 1) is (0.67, 0.24, 0.09), top-p 0.8 keeps two
    both = sample(logits, SamplingSettings(top_k=3, top_p=0.8, cfg_coef=1.0), g)
    assert set(both.tolist()) == {1, 3}
    # the shape of the leading dimensions is kept: [B, K, card] -> [B, K]
    assert sample(logits[:6].view(2, 3, 5), SamplingSettings(top_k=2), g).shape == (2, 3)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="objective 'ar', not 'magnet'"):
        generate_ar(tiny_model("magnet"), conditions(1), 5, SamplingSettings())
    with pytest.raises(ValueError, match=r"1\.\.24"):
        generate_ar(tiny_model(), conditions(1), 25, SamplingSettings())
    with pytest.raises(ValueError, match="top_p"):
        SamplingSettings(top_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        SamplingSettings(temperature=-1)
