"""MAGNeT decoding: no masked position left, exactly the configured forward passes, audiocraft's
schedule (cosine masking with at least one span redrawn per step, CFG annealed with the mask fraction,
temperature T (n-1-i)/n floored at 0.01), spans ranked by their most probable token, kept tokens never
re-masked, an oracle model decoded exactly, the model's own span length, seeded, and refused for AR
models."""

from __future__ import annotations

import pytest
import torch
from lm_fixtures import CARD, conditions, tiny_model

from instrumentgen.generate.magnet import MagnetSettings, generate_magnet, masked_spans, step_plan
from instrumentgen.generate.run import Decoder
from instrumentgen.generate.settings import decoder_from_dict


def counting(model):
    calls = []
    original = model.forward

    def forward(tokens, cond, cache=None, codebook=None):
        calls.append(tokens.clone())
        return original(tokens, cond, cache, codebook)

    model.forward = forward
    return calls


def test_decoding_fills_every_position_in_exactly_the_configured_passes():
    model, cond = tiny_model("magnet"), conditions(3)
    calls = counting(model)
    codes = generate_magnet(
        model, cond, 14, MagnetSettings(steps=(6, 3, 2, 2)), torch.Generator().manual_seed(0)
    )
    assert codes.shape == (3, 4, 14)
    assert int(codes.max()) < CARD and int(codes.min()) >= 0  # no mask token left
    assert len(calls) == 6 + 3 + 2 + 2
    assert all(c.shape[0] == 6 for c in calls)  # one pass over [conditional; null]


def test_paper_schedule_takes_fifty_passes():
    model = tiny_model("magnet")
    calls = counting(model)
    generate_magnet(model, conditions(1), 20, MagnetSettings(), torch.Generator().manual_seed(0))
    assert len(calls) == 50


def test_schedule_is_audiocrafts():
    s = MagnetSettings(temperature=3.0, cfg_max=10.0, cfg_min=1.0)
    plans = [step_plan(s, i, 5) for i in range(5)]
    # audiocraft's mask fraction cos(pi/2 t) at t = linspace(0, 1, 5): cos 0, pi/8, pi/4, 3pi/8, pi/2
    fractions = [1.0, 0.9238795325112867, 0.7071067811865476, 0.3826834323650898, 0.0]
    assert [p.mask_fraction for p in plans] == pytest.approx(fractions, abs=1e-12)
    assert plans[0].mask_fraction == 1.0 and plans[-1].mask_fraction == pytest.approx(0.0, abs=1e-12)
    # CFG follows the mask fraction (10 while all is masked, 1 at the last step), not the step count
    assert [p.cfg_coef for p in plans] == pytest.approx([10.0, 9.314915792601581, 7.363961030678928,
                                                         4.444150891285808, 1.0])
    # temperature T (n - 1 - i) / n, floored at 0.01: the last step is near-greedy
    assert [p.temperature for p in plans] == pytest.approx([3 * 4 / 5, 3 * 3 / 5, 3 * 2 / 5, 3 * 1 / 5, 0.01])
    # a one-step stage: everything masked, full guidance, near-greedy (not temperature 3 at CFG 10)
    assert step_plan(s, 0, 1) == step_plan(s, 0, 1).__class__(1.0, 10.0, 0.01)
    # at least one span is masked (and redrawn) at every step, the last included
    assert [masked_spans(10, f) for f in fractions] == [10, 9, 7, 3, 1]
    assert masked_spans(7, 1.0) == 7 and masked_spans(7, 0.0) == 1
    with pytest.raises(ValueError, match="outside 0..4"):
        step_plan(s, 5, 5)


def test_each_step_masks_the_least_confident_of_the_last_draws():
    """Inputs seen by the model within a stage: step 0 all masked, then exactly masked_spans(...) spans
    masked, and they are spans drawn at the step before."""
    model, cond = tiny_model("magnet"), conditions(2)
    calls = counting(model)
    settings = MagnetSettings(steps=(5, 1, 1, 1), span_length=2)
    n_frames, n_spans = 12, 6
    generate_magnet(model, cond, n_frames, settings, torch.Generator().manual_seed(3))
    mask = model.config.mask_token
    previous = None
    for i in range(5):
        masked_frames = calls[i][:2, 0] == mask  # [B, T] stage 0, conditional rows
        masked_span = masked_frames.view(2, n_spans, 2)
        assert (masked_span.all(-1) == masked_span.any(-1)).all()  # whole spans only
        expected = masked_spans(n_spans, step_plan(settings, i, 5).mask_fraction)
        assert (masked_span.all(-1).sum(-1) == expected).all()
        if previous is not None:
            assert not (masked_frames & ~previous).any()  # only spans redrawn at the step before
        previous = masked_frames


class OracleModel(torch.nn.Module):
    """Wraps a MAGNeT model so that its logits favour ``target`` ``[B, K, T]`` by ``margin`` nats
    (conditional and null rows alike)."""

    def __init__(self, model, target, margin):
        super().__init__()
        self.inner, self.target, self.margin, self.config = model, target, margin, model.config

    def forward(self, tokens, cond, cache=None, codebook=None):
        out = self.inner(tokens, cond, cache, codebook)
        onehot = torch.nn.functional.one_hot(self.target[:, codebook], out.logits.shape[-1]).float()
        out.logits[:, 0] = onehot.repeat(2, 1, 1) * self.margin  # [2B, T, card]
        return out

    def encode_conditions(self, cond):
        return self.inner.encode_conditions(cond)


def test_an_oracle_model_is_decoded_exactly():
    model, cond = tiny_model("magnet"), conditions(3)
    target = torch.randint(0, CARD, (3, 4, 11), generator=torch.Generator().manual_seed(0))
    oracle = OracleModel(model, target, margin=30.0)
    for steps in ((1, 1, 1, 1), (6, 3, 2, 2), (20, 10, 10, 10)):
        settings = MagnetSettings(steps=steps)
        codes = generate_magnet(oracle, cond, 11, settings, torch.Generator().manual_seed(1))
        assert torch.equal(codes, target), steps


def test_span_length_is_the_models():
    decoder = Decoder(magnet=MagnetSettings(span_length=3))
    assert decoder.for_checkpoint({"settings": {"span_length": 5}}).magnet.span_length == 5
    assert decoder.for_checkpoint({"variant": "old"}).magnet.span_length == 3
    with pytest.raises(ValueError, match="unknown magnet setting 'span_length'"):
        decoder_from_dict({"magnet": {"span_length": 4}})


def test_stages_decode_in_order_and_kept_tokens_stay():
    """Inputs seen by the model: while stage k decodes, stages > k are fully masked, stages < k are final,
    the number of masked stage-k positions never grows, and a token once kept never changes."""
    model, cond = tiny_model("magnet"), conditions(2)
    calls = counting(model)
    steps = (5, 3, 3, 2)
    codes = generate_magnet(model, cond, 12, MagnetSettings(steps=steps), torch.Generator().manual_seed(1))
    mask = model.config.mask_token
    i = 0
    for stage, n in enumerate(steps):
        previous = None
        for _ in range(n):
            seen = calls[i][:2]
            i += 1
            assert (seen[:, stage + 1 :] == mask).all()
            assert torch.equal(seen[:, :stage], codes[:, :stage])
            if previous is not None:
                kept = previous != mask
                assert torch.equal(seen[:, stage][kept], previous[kept])
                assert (seen[:, stage] == mask).sum() <= (previous == mask).sum()
            previous = seen[:, stage]


def test_same_seed_same_codes():
    model, cond = tiny_model("magnet"), conditions(2)
    s = MagnetSettings(steps=(4, 2, 2, 2))
    a = generate_magnet(model, cond, 10, s, torch.Generator().manual_seed(5))
    b = generate_magnet(model, cond, 10, s, torch.Generator().manual_seed(5))
    c = generate_magnet(model, cond, 10, s, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="objective 'magnet', not 'ar'"):
        generate_magnet(tiny_model("ar"), conditions(1), 5)
    with pytest.raises(ValueError, match="one count per codebook"):
        generate_magnet(tiny_model("magnet"), conditions(1), 5, MagnetSettings(steps=(3, 3)))
    with pytest.raises(ValueError, match="positive ints"):
        MagnetSettings(steps=(3, 0, 1, 1))
