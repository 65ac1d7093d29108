"""How the decoders condition the model: the conditional branch honours the plan's drop mask (family and
source are not known at inference and get their null embeddings), the CFG null branch nulls every
condition, and every tensor the decoders create follows the conditions' device."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from lm_fixtures import conditions, tiny_model

from instrumentgen.generate.ar import generate_ar
from instrumentgen.generate.conditioning import condition_tokens
from instrumentgen.generate.magnet import MagnetSettings, generate_magnet
from instrumentgen.generate.sampling import SamplingSettings
from instrumentgen.lm.conditioners import CONDITIONS, Conditions

FAMILY, SOURCE = CONDITIONS.index("family"), CONDITIONS.index("source")


def drop_family_source(cond: Conditions) -> Conditions:
    drop = torch.zeros(len(cond), len(CONDITIONS), dtype=torch.bool)
    drop[:, [FAMILY, SOURCE]] = True
    return cond.with_drop(drop)


def other_family_source(cond: Conditions) -> Conditions:
    """The same conditions with every family and source id changed."""
    return Conditions(
        cond.pitch, cond.velocity, (cond.family + 3) % 11, (cond.source + 1) % 3, cond.clap, cond.drop
    )


@pytest.mark.parametrize("guided", [False, True])
def test_dropped_family_and_source_do_not_reach_the_conditional_branch(guided: bool):
    model = tiny_model()
    cond = drop_family_source(conditions(4))
    tokens = condition_tokens(model, cond, guided)
    torch.testing.assert_close(condition_tokens(model, other_family_source(cond), guided), tokens)
    null = model.conditions.null.detach()
    torch.testing.assert_close(tokens[:4, FAMILY], null[FAMILY].expand(4, -1))
    torch.testing.assert_close(tokens[:4, SOURCE], null[SOURCE].expand(4, -1))
    # the check can fail: kept, the ids do change the tokens
    kept = cond.with_drop(None)
    assert not torch.allclose(
        condition_tokens(model, kept, guided), condition_tokens(model, other_family_source(kept), guided)
    )


@pytest.mark.parametrize("objective", ["ar", "magnet"])
def test_dropped_family_and_source_do_not_change_the_generated_codes(objective: str):
    model, cond = tiny_model(objective), drop_family_source(conditions(3))

    def decode(c: Conditions) -> torch.Tensor:
        if objective == "ar":
            return generate_ar(model, c, 10, SamplingSettings(temperature=0.0, cfg_coef=3.0))
        return generate_magnet(model, c, 10, MagnetSettings(steps=(2, 1, 1, 1), temperature=0.0))

    assert torch.equal(decode(cond), decode(other_family_source(cond)))
    kept = cond.with_drop(None)
    assert not torch.equal(decode(kept), decode(other_family_source(kept)))


def test_the_null_branch_nulls_every_condition():
    model = tiny_model()
    a, b = conditions(5, seed=1), conditions(5, seed=2)
    null_a = condition_tokens(model, a, guided=True)[5:]
    null_b = condition_tokens(model, drop_family_source(b), guided=True)[5:]
    expected = model.conditions.null.detach().expand(5, -1, -1)
    torch.testing.assert_close(null_a, expected)
    torch.testing.assert_close(null_b, expected)
    # the conditional half does depend on the conditions
    assert not torch.allclose(condition_tokens(model, a, True)[:5], condition_tokens(model, b, True)[:5])


@contextmanager
def meta_default_device():
    """Make ``meta`` the default device: a tensor created without ``device=`` lands there, so mixing
    it with the model's CPU tensors fails (as a CPU mask beside CUDA tensors fails on a GPU)."""
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


@pytest.mark.parametrize("cfg_coef", [1.0, 3.0])
def test_ar_decoding_creates_its_tensors_on_the_conditions_device(cfg_coef):
    model, cond = tiny_model(), drop_family_source(conditions(3))
    settings = SamplingSettings(temperature=1.0, top_k=5, cfg_coef=cfg_coef)
    expected = generate_ar(model, cond, 8, settings, torch.Generator().manual_seed(0))
    with meta_default_device():
        out = generate_ar(model, cond, 8, settings, torch.Generator(device="cpu").manual_seed(0))
    assert out.device.type == "cpu"
    assert torch.equal(out, expected)


def test_magnet_decoding_creates_its_tensors_on_the_conditions_device():
    model, cond = tiny_model("magnet"), drop_family_source(conditions(3))
    settings = MagnetSettings(steps=(2, 1, 1, 1))
    expected = generate_magnet(model, cond, 8, settings, torch.Generator().manual_seed(0))
    with meta_default_device():
        out = generate_magnet(model, cond, 8, settings, torch.Generator(device="cpu").manual_seed(0))
    assert out.device.type == "cpu"
    assert torch.equal(out, expected)
