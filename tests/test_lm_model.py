"""Tests for the codec LM: config, conditioners, model (masking, null conditions, KV cache), losses and
checkpoints (instrumentgen.lm.{config,conditioners,model,losses}, instrumentgen.lm.checkpoint)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from instrumentgen.lm.checkpoint import FORMAT, CheckpointError, load_model, save_atomic
from instrumentgen.lm.conditioners import (
    CONDITIONS,
    CategoricalConditioner,
    ConditionEncoder,
    ConditionError,
    Conditions,
    ResidualVQ,
    encode_categories,
)
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.losses import ar_inputs, ar_loss, magnet_loss
from instrumentgen.lm.magnet import sample_magnet_mask
from instrumentgen.lm.model import CodecLM
from instrumentgen.lm.pattern import DelayPattern
from instrumentgen.testing import TINY_LM, random_conditions, random_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY = {**TINY_LM, "max_frames": 16}
N_CLASSES = {"pitch": 88, "velocity": 5, "family": 11, "source": 3}


def tiny_config(**overrides) -> LMConfig:
    return LMConfig(**{**TINY, **overrides})


def tiny_model(seed: int = 0, **overrides) -> CodecLM:
    """A tiny model in eval mode with "trained-looking" weights (see :mod:`instrumentgen.testing`)."""
    return random_model(tiny_config(**overrides), seed, weight_std=0.25, clap_rows=50)


def make_conditions(batch: int, seed: int, drop: torch.Tensor | None = None) -> Conditions:
    return random_conditions(batch, seed=seed, drop=drop)


def opposite_conditions(batch: int, drop: torch.Tensor | None = None) -> tuple[Conditions, Conditions]:
    """Two condition batches that differ in every field."""
    g = torch.Generator().manual_seed(7)
    clap = torch.randn(batch, 8, generator=g)
    zeros = torch.zeros(batch, dtype=torch.long)
    a = Conditions(zeros, zeros, zeros, zeros, clap, drop=drop)
    b = Conditions(
        torch.full((batch,), 87),
        torch.full((batch,), 4),
        torch.full((batch,), 10),
        torch.full((batch,), 2),
        -clap + torch.randn(batch, 8, generator=g),
        drop=drop,
    )
    return a, b


def random_tokens(batch: int, steps: int, seed: int, card: int = 16, k: int = 4) -> torch.Tensor:
    return torch.randint(0, card, (batch, k, steps), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model() -> CodecLM:
    return tiny_model()


def test_one_codebook_head_gives_that_codebooks_logits(model: CodecLM) -> None:
    """MAGNeT runs one head per pass: the same logits as the full forward, for every codebook."""
    tokens = torch.randint(0, model.config.codebook_size, (3, model.config.n_codebooks, 7))
    cond = make_conditions(3, seed=1)
    full = model(tokens, cond).logits
    for k in range(model.config.n_codebooks):
        one = model(tokens, cond, codebook=k).logits
        assert one.shape == (3, 1, 7, model.config.codebook_size)
        torch.testing.assert_close(one[:, 0], full[:, k])


def test_conditioners_start_at_unit_scale_not_std_002() -> None:
    """The conditioners keep PyTorch's default init (as audiocraft's): categorical tokens of rms ~0.5,
    so that pitch reaches the model from the first step; the transformer and heads use std 0.02."""
    torch.manual_seed(0)
    lm = CodecLM(LMConfig(dim=64, n_layers=1, n_heads=2, codebook_size=32, clap_dim=16, clap_n_q=1,
                          clap_bins=8, category_dim=8, max_frames=8))
    assert 0.1 < float(lm.conditions.categorical["pitch"].table.weight.detach().std()) < 10
    assert abs(float(lm.heads[0].weight.detach().std()) - 0.02) < 0.005
    assert abs(float(lm.embed[0].weight.detach().std()) - 0.02) < 0.005


# --------------------------------------------------------------------------- 1. parameter count
def test_paper_size_parameter_count() -> None:
    torch.manual_seed(0)
    cfg = LMConfig()
    assert (cfg.n_layers, cfg.n_heads, cfg.dim, cfg.n_codebooks, cfg.codebook_size) == (12, 16, 512, 4, 1024)
    lm = CodecLM(cfg)
    counts = lm.count_parameters()
    assert counts["trainable"] == sum(p.numel() for p in lm.parameters() if p.requires_grad)
    assert 50_000_000 <= counts["trainable"] <= 60_000_000, counts
    assert 55_000_000 <= counts["total"] <= 65_000_000, counts

    d, k, card, vocab, layers, c = 512, 4, 1024, 1024 + 2, 12, 64
    embeddings = k * vocab * d
    heads = k * d * card
    attention = 2 * 4 * d * d  # self + cross: q (d^2) + kv (2 d^2) + out (d^2), no biases
    ffn = 2 * d * 4 * d  # two linears, no biases
    norms = 3 * 2 * d
    blocks = layers * (attention + ffn + norms)
    final_norm = 2 * d
    categorical = sum(n * c + c * d + d for n in (88, 5, 11, 3))
    clap_proj = 512 * d + d
    null = 5 * d
    expected = embeddings + heads + blocks + final_norm + categorical + clap_proj + null
    assert expected == 54_973_120
    assert counts["trainable"] == expected
    assert counts["rvq_codebooks"] == 12 * 1024 * 512
    assert counts["total"] == expected + 12 * 1024 * 512


# --------------------------------------------------------------------------- 2. LMConfig validation
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dim": 33, "n_heads": 2}, "dim"),
        ({"dim": 32, "n_heads": 5}, "n_heads"),
        ({"n_layers": -1}, "n_layers"),
        ({"codebook_size": 0}, "codebook_size"),
        ({"n_heads": True}, "n_heads"),
        ({"clap_bins": 8.0}, "clap_bins"),
        ({"objective": "diffusion"}, "objective"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_config_rejects_bad_values(overrides: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        tiny_config(**overrides)


def test_config_valid_and_derived_tokens() -> None:
    cfg = tiny_config(dropout=0.5, objective="magnet")
    assert (cfg.special_token, cfg.mask_token, cfg.vocab_size) == (16, 17, 18)


def test_config_mismatch_and_round_trip() -> None:
    a = tiny_config()
    assert a.mismatch(tiny_config()) == []
    b = tiny_config(dim=64, n_layers=3)
    diff = a.mismatch(b)
    assert len(diff) == 2
    assert diff[0].startswith("dim:") and "32" in diff[0] and "64" in diff[0]
    assert diff[1].startswith("n_layers:") and "2" in diff[1] and "3" in diff[1]
    assert LMConfig.from_dict(a.to_dict()) == a


def test_config_from_dict_rejects_unknown_keys() -> None:
    values = {**tiny_config().to_dict(), "n_kv_heads": 2, "bogus": 1}
    with pytest.raises(ValueError, match="bogus") as info:
        LMConfig.from_dict(values)
    assert "n_kv_heads" in str(info.value)


# --------------------------------------------------------------------------- 3. categories
def test_encode_categories_maps_ranges() -> None:
    pitch = np.arange(21, 109)
    n = len(pitch)
    velocity = np.resize([25, 50, 75, 100, 127], n)
    family = np.resize(np.arange(11), n)
    source = np.resize(np.arange(3), n)
    out = encode_categories(pitch, velocity, family, source)
    np.testing.assert_array_equal(out["pitch"], np.arange(88))
    np.testing.assert_array_equal(out["velocity"], np.resize(np.arange(5), n))
    np.testing.assert_array_equal(out["family"], family)
    np.testing.assert_array_equal(out["source"], source)
    for values in out.values():
        assert values.dtype == np.int64


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pitch", 20),
        ("pitch", 109),
        ("velocity", 60),
        ("velocity", 128),
        ("velocity", -5),
        ("family", 11),
        ("family", -1),
        ("source", 3),
    ],
)
def test_encode_categories_rejects_out_of_range(field: str, value: int) -> None:
    good = {"pitch": [60, 61], "velocity": [100, 25], "family": [0, 10], "source": [2, 0]}
    good[field] = [good[field][0], value]
    with pytest.raises(ConditionError, match=rf"{field}\b.*{value}"):
        encode_categories(**good)


def test_condition_error_is_value_error() -> None:
    assert issubclass(ConditionError, ValueError)


@pytest.mark.parametrize("bad", [-1, 5, 100])
def test_categorical_conditioner_index_range(bad: int) -> None:
    cond = CategoricalConditioner("velocity", 5, 4, 8)
    assert cond(torch.tensor([0, 4])).shape == (2, 8)
    with pytest.raises(ConditionError, match=rf"velocity.*{bad}"):
        cond(torch.tensor([0, bad]))


# --------------------------------------------------------------------------- 4. null conditioning
def test_all_dropped_logits_ignore_conditions(model: CodecLM) -> None:
    tokens = random_tokens(2, 6, seed=1)
    drop = torch.ones(2, 5, dtype=torch.bool)
    a, b = opposite_conditions(2, drop)
    with torch.no_grad():
        la, lb = model(tokens, a).logits, model(tokens, b).logits
    torch.testing.assert_close(la, lb, atol=0, rtol=0)
    # without dropping, the same two batches must give different logits
    keep = torch.zeros(2, 5, dtype=torch.bool)
    with torch.no_grad():
        ka, kb = model(tokens, a.with_drop(keep)).logits, model(tokens, b.with_drop(keep)).logits
        kn = model(tokens, a.with_drop(None)).logits
    assert (ka - kb).abs().max() > 1e-4
    torch.testing.assert_close(ka, kn, atol=0, rtol=0)  # drop=None keeps everything
    assert (ka - la).abs().max() > 1e-4


def test_dropping_clap_only(model: CodecLM) -> None:
    tokens = random_tokens(2, 6, seed=2)
    drop = torch.zeros(2, 5, dtype=torch.bool)
    drop[:, CONDITIONS.index("clap")] = True
    base = make_conditions(2, seed=3, drop=drop)
    other_clap = Conditions(
        base.pitch,
        base.velocity,
        base.family,
        base.source,
        torch.randn(2, 8, generator=torch.Generator().manual_seed(9)),
        drop=drop,
    )
    other_pitch = Conditions(
        (base.pitch + 40) % 88, base.velocity, base.family, base.source, base.clap, drop=drop
    )
    with torch.no_grad():
        l0 = model(tokens, base).logits
        l_clap = model(tokens, other_clap).logits
        l_pitch = model(tokens, other_pitch).logits
    torch.testing.assert_close(l0, l_clap, atol=0, rtol=0)
    assert (l0 - l_pitch).abs().max() > 1e-4


def test_dropped_token_is_learned_null_row(model: CodecLM) -> None:
    drop = torch.tensor([[True, False, True, False, True], [False, True, False, True, False]])
    cond = make_conditions(2, seed=4, drop=drop)
    with torch.no_grad():
        out = model.conditions(cond)
        kept = model.conditions(cond.with_drop(None))
    assert out.shape == (2, 5, 32)
    null = model.conditions.null.detach()
    assert null.abs().min() > 0  # a learned row, not zeros
    for b in range(2):
        for c in range(5):
            if drop[b, c]:
                torch.testing.assert_close(out[b, c], null[c], atol=0, rtol=0)
            else:
                torch.testing.assert_close(out[b, c], kept[b, c], atol=0, rtol=0)
                assert not torch.allclose(out[b, c], null[c])
    assert out[drop].abs().sum(-1).min() > 0


def test_per_sample_drop_does_not_leak(model: CodecLM) -> None:
    tokens = random_tokens(2, 6, seed=5)
    drop = torch.tensor([[True] * 5, [False] * 5])
    cond = make_conditions(2, seed=6, drop=drop)
    with torch.no_grad():
        both = model(tokens, cond).logits
        alone = model(tokens[1:2], cond.index(slice(1, 2))).logits
        alone0_kept = model(tokens[0:1], cond.index(slice(0, 1)).with_drop(None)).logits
    torch.testing.assert_close(both[1:2], alone, atol=1e-5, rtol=1e-5)
    assert (both[0:1] - alone0_kept).abs().max() > 1e-4  # sample 0 really was dropped


# --------------------------------------------------------------------------- 5. causality
def test_ar_is_causal(model: CodecLM) -> None:
    assert model.config.objective == "ar"
    tokens = random_tokens(1, 10, seed=8)
    cond = make_conditions(1, seed=9)
    with torch.no_grad():
        ref = model(tokens, cond).logits
        for s in (0, 3, 8):
            changed = tokens.clone()
            changed[:, :, s + 1 :] = (changed[:, :, s + 1 :] + 5) % 16
            out = model(changed, cond).logits
            torch.testing.assert_close(out[:, :, : s + 1], ref[:, :, : s + 1], atol=1e-6, rtol=1e-6)
            assert (out[:, :, s + 1 :] - ref[:, :, s + 1 :]).abs().max() > 1e-4


def test_magnet_is_bidirectional() -> None:
    lm = tiny_model(objective="magnet")
    tokens = random_tokens(1, 10, seed=8)
    cond = make_conditions(1, seed=9)
    changed = tokens.clone()
    changed[:, :, -1] = (changed[:, :, -1] + 5) % 16
    with torch.no_grad():
        ref, out = lm(tokens, cond).logits, lm(changed, cond).logits
    assert (out[:, :, 0] - ref[:, :, 0]).abs().max() > 1e-4


# --------------------------------------------------------------------------- 6. KV cache
def test_kv_cache_matches_full_forward(model: CodecLM) -> None:
    tokens = random_tokens(2, 12, seed=10)
    tokens[:, :, 0] = 16  # the special start token
    cond = make_conditions(2, seed=11)
    with torch.no_grad():
        full = model(tokens, cond)
        assert len(full.cache) == 2 and full.cache[0].length == 12  # a full forward's cache continues it
        assert full.logits.shape == (2, 4, 12, 16) and full.logits.dtype == torch.float32
        out = model(tokens[:, :, :1], cond)
        steps = [out.logits]
        for s in range(1, 12):
            out = model(tokens[:, :, s : s + 1], cond, cache=out.cache)
            steps.append(out.logits)
        assert len(out.cache) == 2 and out.cache[0].length == 12
        # a multi-step prefix followed by single steps also matches
        pre = model(tokens[:, :, :5], cond)
        tail = model(tokens[:, :, 5:6], cond, cache=pre.cache)
    torch.testing.assert_close(torch.cat(steps, dim=2), full.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tail.logits, full.logits[:, :, 5:6], atol=1e-5, rtol=1e-5)


def test_preallocated_cache_matches_full_forward_and_fills_in_place(model: CodecLM) -> None:
    tokens = random_tokens(2, 12, seed=12)
    cond = make_conditions(2, seed=13)
    with torch.no_grad():
        full = model(tokens, cond).logits
        cond_tokens = model.encode_conditions(cond)
        cache = model.start_cache(cond_tokens, 12)
        buffers = [layer.self_k.data_ptr() for layer in cache]
        steps = []
        for s in range(12):
            out = model(tokens[:, :, s : s + 1], cond_tokens, cache)
            cache = out.cache
            steps.append(out.logits)
    torch.testing.assert_close(torch.cat(steps, dim=2), full, atol=1e-5, rtol=1e-5)
    assert [layer.self_k.data_ptr() for layer in cache] == buffers  # written in place, never reallocated
    assert all(layer.length == 12 and layer.self_k.shape[2] == 12 for layer in cache)
    with pytest.raises(ValueError, match="capacity"):
        model.start_cache(cond_tokens, 16 + 4 + 1)


def test_sequence_length_limit(model: CodecLM) -> None:
    cond = make_conditions(1, seed=0)
    limit = 16 + 4
    with torch.no_grad():
        assert model(random_tokens(1, limit, seed=0), cond).logits.shape[2] == limit
        with pytest.raises(ValueError, match="exceeds"):
            model(random_tokens(1, limit + 1, seed=0), cond)
        out = model(random_tokens(1, limit, seed=0), cond)
        with pytest.raises(ValueError, match="exceeds"):
            model(random_tokens(1, 1, seed=0), cond, cache=out.cache)


# --------------------------------------------------------------------------- 7. ResidualVQ
def test_rvq_error_non_increasing_with_stages() -> None:
    # Nearest-code RVQ does not guarantee a lower error at every stage (the nearest code may be farther
    # from a residual than zero is); with 8 codes in 8-d about 1 random draw in 8 has a stage that adds
    # error, so this uses 32 codes for 200 points, where no stage did so in 200 draws.
    data = torch.randn(200, 8, generator=torch.Generator().manual_seed(1))
    rvq = ResidualVQ(8, 4, 32)
    rvq.initialize(data, torch.Generator().manual_seed(0))
    rvq.eval()
    quantised, codes = rvq(data)
    assert codes.shape == (200, 4) and codes.dtype == torch.long
    partial = torch.zeros_like(data)
    errors = [float(data.norm())]
    for q in range(4):
        partial = partial + rvq.codebooks[q][codes[:, q]]
        errors.append(float((data - partial).norm()))
    torch.testing.assert_close(quantised, partial, atol=1e-6, rtol=0)
    assert all(b <= a + 1e-6 for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 0.8 * errors[0], errors
    # fewer stages with the same seed: same leading codebooks, same prefix errors
    for n_q in (1, 2):
        small = ResidualVQ(8, n_q, 32)
        small.initialize(data, torch.Generator().manual_seed(0))
        small.eval()
        torch.testing.assert_close(small.codebooks, rvq.codebooks[:n_q], atol=0, rtol=0)
        q_small, _ = small(data)
        assert math.isclose(float((data - q_small).norm()), errors[n_q], rel_tol=1e-5)


def test_rvq_initialize_deterministic() -> None:
    data = torch.randn(30, 8, generator=torch.Generator().manual_seed(2))
    a, b, c = ResidualVQ(8, 3, 8), ResidualVQ(8, 3, 8), ResidualVQ(8, 3, 8)
    a.initialize(data, torch.Generator().manual_seed(5))
    b.initialize(data, torch.Generator().manual_seed(5))
    c.initialize(data, torch.Generator().manual_seed(6))
    assert bool(a.initialized)
    torch.testing.assert_close(a.codebooks, b.codebooks, atol=0, rtol=0)
    assert not torch.equal(a.codebooks, c.codebooks)
    # without Lloyd iterations the stage-0 codes are distinct rows of the data; k-means lowers the error
    rows = ResidualVQ(8, 1, 8)
    rows.initialize(data, torch.Generator().manual_seed(5), iters=0)
    same = (rows.codebooks[0][:, None] == data[None]).all(dim=-1)  # [codes, rows]
    assert (same.sum(dim=1) == 1).all() and len(set(same.float().argmax(dim=1).tolist())) == 8
    fitted = ResidualVQ(8, 1, 8)
    fitted.initialize(data, torch.Generator().manual_seed(5))
    rows.eval(), fitted.eval()
    assert float((fitted(data)[0] - data).norm()) < float((rows(data)[0] - data).norm())


def test_rvq_ema_moves_codebook_toward_assigned() -> None:
    init = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    rvq = ResidualVQ(2, 1, 4, ema=True, decay=0.9)
    rvq.initialize(init, torch.Generator().manual_seed(0))
    rvq.train()
    before = rvq.codebooks.clone()
    target = torch.tensor([1.0, 1.0])
    batch = target + 0.01 * torch.randn(6, 2, generator=torch.Generator().manual_seed(3))
    j = int(torch.cdist(batch[:1], before[0]).argmin())
    _, codes = rvq(batch)
    assert (codes[:, 0] == j).all()
    after = rvq.codebooks
    assert (after[0, j] - target).norm() < (before[0, j] - target).norm() - 0.1
    # the EMA value: (decay * c + (1 - decay) * sum) / (decay + (1 - decay) * count), up to eps smoothing
    expected = (0.9 * before[0, j] + 0.1 * batch.sum(0)) / (0.9 + 0.1 * 6)
    torch.testing.assert_close(after[0, j], expected, atol=1e-3, rtol=1e-3)
    assert rvq.cluster_size[0, j] > 1.0


def test_rvq_eval_leaves_buffers_unchanged() -> None:
    rvq = ResidualVQ(8, 2, 8, ema=True)
    rvq.initialize(torch.randn(40, 8), torch.Generator().manual_seed(0))
    rvq.eval()
    before = {name: buf.clone() for name, buf in rvq.named_buffers()}
    rvq(torch.randn(16, 8) * 3)
    for name, buf in rvq.named_buffers():
        assert torch.equal(buf, before[name]), name
    rvq.train()
    rvq(torch.randn(16, 8) * 3)
    assert not torch.equal(rvq.codebooks, before["codebooks"])


def test_dropped_clap_rows_do_not_move_the_quantiser() -> None:
    """A CLAP embedding replaced by its null token (CFG dropout) contributes nothing to the RVQ's EMA
    statistics: a batch with rows 1..3 dropped updates the codebooks exactly as row 0 alone."""
    cond = make_conditions(4, seed=1)
    clap_col = CONDITIONS.index("clap")
    encoders = []
    for _ in range(2):
        enc = ConditionEncoder(tiny_config(clap_quantiser="ema"))
        enc.initialize_clap(
            torch.randn(50, 8, generator=torch.Generator().manual_seed(5)), torch.Generator().manual_seed(0)
        )
        enc.train()
        encoders.append(enc)
    initial = encoders[0].rvq.codebooks.clone()
    drop = torch.zeros(4, len(CONDITIONS), dtype=torch.bool)
    drop[1:, clap_col] = True
    encoders[0](cond.with_drop(drop))
    encoders[1](cond.index(slice(0, 1)))
    for (name, a), (_, b) in zip(
        encoders[0].rvq.named_buffers(), encoders[1].rvq.named_buffers(), strict=True
    ):
        torch.testing.assert_close(a, b, msg=name)
    assert not torch.equal(encoders[0].rvq.codebooks, initial)  # the kept row did update them


def test_condition_encoder_requires_initialised_clap() -> None:
    enc = ConditionEncoder(tiny_config())
    with pytest.raises(RuntimeError, match="initialize_clap"):
        enc(make_conditions(2, seed=0))
    enc.initialize_clap(torch.randn(50, 8), torch.Generator().manual_seed(0))
    assert enc(make_conditions(2, seed=0)).shape == (2, 5, 32)


def test_rvq_wrong_width_raises() -> None:
    rvq = ResidualVQ(8, 2, 8)
    rvq.initialize(torch.randn(20, 8), torch.Generator().manual_seed(0))
    with pytest.raises(ConditionError, match="8"):
        rvq(torch.randn(3, 7))
    with pytest.raises(ConditionError):
        rvq(torch.randn(8))
    with pytest.raises(ValueError):
        rvq.initialize(torch.randn(20, 7), torch.Generator().manual_seed(0))
    enc = ConditionEncoder(tiny_config())
    enc.initialize_clap(torch.randn(50, 8), torch.Generator().manual_seed(0))
    bad = make_conditions(2, seed=0)
    bad.clap = torch.randn(2, 9)
    with pytest.raises(ConditionError):
        enc(bad)


# --------------------------------------------------------------------------- 8. losses
def test_ar_inputs_shift_and_start_token() -> None:
    pattern = DelayPattern(4, 16)
    codes = random_tokens(2, 5, seed=12)
    inputs, targets, mask = ar_inputs(codes, pattern)
    seq, valid = pattern.build(codes)
    assert inputs.shape == targets.shape == mask.shape == (2, 4, 8)
    assert (inputs[:, :, 0] == 16).all()
    torch.testing.assert_close(inputs[:, :, 1:], seq[:, :, :-1], atol=0, rtol=0)
    torch.testing.assert_close(targets, seq, atol=0, rtol=0)
    assert torch.equal(mask, valid[None].expand(2, -1, -1))
    # frame 0 of codebook 0 is predicted at step 0 (from the start token), codebook 3 at step 3
    assert targets[0, 0, 0] == codes[0, 0, 0] and targets[0, 3, 3] == codes[0, 3, 0]
    assert mask.sum() == 2 * 4 * 5


def test_ar_loss_uniform_logits() -> None:
    lm = tiny_model()
    with torch.no_grad():
        for head in lm.heads:
            head.weight.zero_()
    codes = random_tokens(3, 6, seed=13)
    out = ar_loss(lm, lm.config, codes, make_conditions(3, seed=14))
    assert math.isclose(out.loss.item(), math.log(16), rel_tol=1e-5)
    torch.testing.assert_close(out.count, torch.full((4,), 18.0))
    torch.testing.assert_close(out.ce_sum, torch.full((4,), 18 * math.log(16)), rtol=1e-5, atol=1e-4)
    # a trained-looking model has a different loss, and the loss has gradients
    lm2 = tiny_model(seed=1)
    out2 = ar_loss(lm2, lm2.config, codes, make_conditions(3, seed=14))
    assert not math.isclose(out2.loss.item(), math.log(16), rel_tol=1e-4)
    out2.loss.backward()
    assert lm2.heads[0].weight.grad is not None and lm2.heads[0].weight.grad.abs().sum() > 0


def test_cpu_bf16_autocast_runs_attention_in_float32_and_matches_float32_training(monkeypatch) -> None:
    """Under CPU bf16 autocast (``train.precision: bf16`` on a CPU) every attention call gets float32
    queries, keys and values (PyTorch's bf16 CPU flash-attention backward is ~7x slower); without autocast
    the inputs pass unchanged; and the bf16 loss and gradients stay close to float32's."""
    dtypes: list[tuple[torch.dtype, ...]] = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(q, k, v, **kwargs):
        dtypes.append((q.dtype, k.dtype, v.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    codes = random_tokens(4, 8, seed=21)
    cond = make_conditions(4, seed=22)
    results = {}
    for precision in ("fp32", "bf16"):
        lm = tiny_model(seed=3).train()
        dtypes.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = ar_loss(lm, lm.config, codes, cond)
        out.loss.backward()
        # self- and cross-attention in each layer, all with float32 inputs and autocast off inside
        assert dtypes == [(torch.float32,) * 3 + (False,)] * (2 * lm.config.n_layers), precision
        results[precision] = (out.loss.item(), lm.heads[0].weight.grad.clone(), lm.embed[0].weight.grad)
    (loss32, head32, embed32), (loss16, head16, embed16) = results["fp32"], results["bf16"]
    assert loss16 == pytest.approx(loss32, rel=2e-2)
    torch.testing.assert_close(head16, head32, rtol=0.1, atol=0.05 * head32.abs().max().item())
    torch.testing.assert_close(embed16, embed32, rtol=0.1, atol=0.05 * embed32.abs().max().item())


def test_magnet_loss_counts_only_loss_mask() -> None:
    lm = tiny_model(objective="magnet")
    codes = random_tokens(4, 10, seed=15)
    cond = make_conditions(4, seed=16)
    masks = sample_magnet_mask(4, 4, 10, np.random.default_rng(0), span_length=3)
    assert masks.loss_mask.sum() < masks.input_mask.sum()
    out = magnet_loss(lm, lm.config, codes, cond, masks)
    torch.testing.assert_close(out.count, masks.loss_mask.sum(dim=(0, 2)).float(), atol=0, rtol=0)
    # recompute by hand: mean CE over loss-mask positions only
    inputs = codes.masked_fill(masks.input_mask, lm.config.mask_token)
    with torch.no_grad():
        logits = lm(inputs, cond).logits
    ce = torch.nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), codes, reduction="none")
    lm_mask = masks.loss_mask
    expected = ce[lm_mask].mean()
    assert math.isclose(out.loss.item(), float(expected), rel_tol=1e-5)
    torch.testing.assert_close(out.ce_sum, (ce * lm_mask).sum(dim=(0, 2)), rtol=1e-5, atol=1e-5)
    assert not math.isclose(float(expected), float(ce.mean()), rel_tol=1e-4)


def test_magnet_loss_on_selected_positions_matches_full_logits_and_grads() -> None:
    # the loss computes logits only at the loss positions; the same loss from all logits gives the same
    # value, per-codebook accuracy and gradients
    lm = tiny_model(objective="magnet")
    codes = random_tokens(3, 10, seed=17)
    cond = make_conditions(3, seed=18)
    masks = sample_magnet_mask(3, 4, 10, np.random.default_rng(2), span_length=3)
    out = magnet_loss(lm, lm.config, codes, cond, masks)
    out.loss.backward()
    fast = {n: p.grad.clone() for n, p in lm.named_parameters() if p.grad is not None}
    lm.zero_grad()
    logits = lm(codes.masked_fill(masks.input_mask, lm.config.mask_token), cond).logits  # [B, K, T, card]
    ce = torch.nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), codes, reduction="none")
    (ce[masks.loss_mask].sum() / masks.loss_mask.sum()).backward()
    hits = ((logits.argmax(-1) == codes) & masks.loss_mask).sum(dim=(0, 2)).float()
    torch.testing.assert_close(out.correct, hits, atol=0, rtol=0)
    for name, p in lm.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(fast[name], p.grad, atol=1e-6, rtol=1e-4, msg=name)
    # a stage no row picked: its head is unused but still gets a (zero) gradient (DDP needs one)
    lm.zero_grad()
    only_first = masks.loss_mask.clone()
    only_first[:, 1:] = False
    lm(codes, cond, select=only_first).logits.sum().backward()
    assert lm.heads[3].weight.grad is not None and float(lm.heads[3].weight.grad.abs().sum()) == 0.0
    with pytest.raises(ValueError, match="select must be"):
        lm(codes, cond, select=only_first[:, :2])


# --------------------------------------------------------------------------- 9. checkpoints
def _checkpoint(lm: CodecLM) -> dict:
    return {
        "format": FORMAT,
        "config": lm.config.to_dict(),
        "model": lm.state_dict(),
        "variant": "baseline",
        "step": 3,
    }


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    lm = tiny_model(seed=3)
    path = tmp_path / "sub" / "model.pt"
    save_atomic(_checkpoint(lm), path)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind
    loaded, meta = load_model(path, expected=tiny_config())
    assert not loaded.training
    assert loaded.config == lm.config
    assert meta["variant"] == "baseline" and meta["step"] == 3 and "model" not in meta
    assert bool(loaded.conditions.rvq.initialized)
    tokens, cond = random_tokens(2, 7, seed=17), make_conditions(2, seed=18)
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens, cond).logits, lm(tokens, cond).logits, atol=0, rtol=0)
    fresh = tiny_model(seed=4)
    with torch.no_grad():
        assert (fresh(tokens, cond).logits - lm(tokens, cond).logits).abs().max() > 1e-4


def test_checkpoint_config_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_atomic(_checkpoint(tiny_model()), path)
    with pytest.raises(CheckpointError, match="dim") as info:
        load_model(path, expected=tiny_config(dim=64))
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match="objective"):
        load_model(path, expected=tiny_config(objective="magnet"))


@pytest.mark.parametrize("kind", ["list", "bytes", "dict", "missing"])
def test_checkpoint_foreign_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.pt"
    if kind == "list":
        torch.save([1, 2, 3], path)
    elif kind == "bytes":
        path.write_bytes(np.random.default_rng(0).bytes(256))
    elif kind == "dict":
        torch.save({"format": "something-else/1", "model": {}}, path)
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")):
        load_model(path)


def test_checkpoint_wrong_weights(tmp_path: Path) -> None:
    lm = tiny_model()
    state = _checkpoint(lm)
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("heads.")}
    path = tmp_path / "model.pt"
    save_atomic(state, path)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(path)


# --------------------------------------------------------------------------- bad configurations and files
def test_odd_dim_rejected_or_usable() -> None:
    try:
        cfg = tiny_config(dim=33, n_heads=3)
    except ValueError as err:
        assert "dim" in str(err)
        return
    lm = CodecLM(cfg)
    lm.conditions.initialize_clap(torch.randn(50, 8), torch.Generator().manual_seed(0))
    assert lm(random_tokens(1, 3, seed=0), make_conditions(1, seed=0)).logits.shape == (1, 4, 3, 16)


def test_config_rejects_string_dropout() -> None:
    with pytest.raises(ValueError, match="dropout"):
        tiny_config(dropout="0.5")


def test_checkpoint_without_config(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_atomic({"format": FORMAT, "model": {}}, path)
    with pytest.raises(CheckpointError, match="model.pt"):
        load_model(path)


def test_magnet_overfits_one_batch_and_decodes_it() -> None:
    """A defect in MAGNeT's masking, loss or decoding would keep a tiny model from memorising one batch:
    its masked CE falls near zero, and near-greedy decoding under the batch's own conditions returns most
    of the batch's codes (chance: 1/16; measured 0.82: what a 400-step model gets wrong are contexts that
    training masks rarely show, e.g. a first span redrawn beside final ones)."""
    from instrumentgen.generate.magnet import MagnetSettings, generate_magnet

    torch.manual_seed(0)
    lm = tiny_model(objective="magnet")
    codes = random_tokens(4, 9, seed=21)
    cond = make_conditions(4, seed=22, drop=torch.zeros(4, len(CONDITIONS), dtype=torch.bool))
    optimiser = torch.optim.Adam(lm.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    first = None
    for _ in range(400):
        masks = sample_magnet_mask(4, 4, 9, rng, span_length=3)
        out = magnet_loss(lm, lm.config, codes, cond, masks)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
        first = out.loss.item() if first is None else first
    lm.eval()
    with torch.no_grad():
        masks = sample_magnet_mask(4, 4, 9, np.random.default_rng(1), span_length=3)
        final = magnet_loss(lm, lm.config, codes, cond, masks).loss.item()
    assert first > 2.0 and final < 0.1, (first, final)
    decoded = generate_magnet(lm, cond, 9, MagnetSettings(steps=(4, 2, 2, 2), cfg_max=1.0, temperature=0.0),
                              torch.Generator().manual_seed(0))
    assert (decoded == codes).float().mean() > 0.6
