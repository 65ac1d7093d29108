"""MAGNeT decoding: no masked position left, exactly the configured forward passes, the cosine
re-masking schedule, kept tokens never re-masked, seeded, and refused for AR models."""

from __future__ import annotations

import math

import pytest
import torch
from lm_fixtures import CARD, conditions, tiny_model

from instrumentgen.generate.magnet import MagnetSettings, generate_magnet, masked_spans


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


def test_masking_schedule_is_cosine_and_ends_unmasked():
    assert [masked_spans(10, i, 4) for i in range(4)] == [
        math.floor(10 * math.cos(math.pi / 2 * (i + 1) / 4) + 1e-9) for i in range(4)
    ]
    assert masked_spans(10, 3, 4) == 0
    assert masked_spans(7, 0, 20) == 6


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
