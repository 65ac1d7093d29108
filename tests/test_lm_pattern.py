"""Tests for the MusicGen delay pattern (instrumentgen.lm.pattern)."""

from __future__ import annotations

import functools

import pytest
import torch

from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.pattern import DelayPattern
from instrumentgen.testing import musicgen

CARD = 1024


def _codes(b: int, k: int, t: int, card: int = CARD, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, card, (b, k, t), generator=g)


@pytest.mark.parametrize("k", [1, 2, 4, 9])
@pytest.mark.parametrize("t", [1, 5, 345])
@pytest.mark.parametrize("b", [1, 3])
def test_round_trip(k: int, t: int, b: int) -> None:
    pat = DelayPattern(k, CARD)
    codes = _codes(b, k, t, seed=k * 1000 + t + b)
    seq, valid = pat.build(codes)
    assert seq.shape == (b, k, t + k - 1)
    assert seq.dtype == torch.long
    assert valid.shape == (k, t + k - 1) and valid.dtype == torch.bool
    assert torch.equal(pat.revert(seq), codes)
    # mask marks exactly the special positions (codes never equal CARD)
    assert torch.equal(seq != CARD, valid[None].expand_as(seq))
    assert torch.equal(pat.valid_mask(t), valid)
    # each codebook holds all T codes, in order, on a contiguous run starting at step k
    assert torch.equal(valid.sum(1), torch.full((k,), t))
    for kk in range(k):
        assert torch.equal(seq[:, kk, kk : kk + t], codes[:, kk])


def test_revert_ignores_special_positions_content() -> None:
    pat = DelayPattern(4, CARD)
    codes = _codes(2, 4, 7)
    seq, valid = pat.build(codes)
    noisy = torch.where(valid[None], seq, torch.randint(0, CARD + 1, seq.shape))
    assert torch.equal(pat.revert(noisy), codes)


def test_small_example_by_hand() -> None:
    s = 9  # special token (codebook size 9)
    pat = DelayPattern(3, s)
    codes = torch.tensor([[[0, 1, 2, 3], [4, 5, 6, 7], [8, 0, 1, 2]]])
    expected = torch.tensor(
        [
            [
                [0, 1, 2, 3, s, s],
                [s, 4, 5, 6, 7, s],
                [s, s, 8, 0, 1, 2],
            ]
        ]
    )
    expected_valid = torch.tensor(
        [
            [1, 1, 1, 1, 0, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 0, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    seq, valid = pat.build(codes)
    assert torch.equal(seq, expected)
    assert torch.equal(valid, expected_valid)
    assert torch.equal(pat.valid_mask(4), expected_valid)
    assert torch.equal(pat.revert(expected), codes)


def test_build_accepts_int32_and_keeps_device() -> None:
    pat = DelayPattern(2, CARD)
    codes = _codes(1, 2, 3).to(torch.int32)
    seq, valid = pat.build(codes)
    assert seq.dtype == torch.long and seq.device == codes.device
    assert torch.equal(pat.revert(seq), codes.long())


# --------------------------------------------------------------------------- transformers agreement


@functools.cache
def _hf_model(k: int, card: int):
    """A one-layer MusicGen decoder with ``k`` codebooks of ``card`` codes (pad = BOS = ``card``)."""
    config = LMConfig(dim=16, n_layers=1, n_heads=2, ffn_mult=2, n_codebooks=k, codebook_size=card,
                      max_frames=64 - k)
    return musicgen(config)


# transformers' build_delay_pattern_mask returns its input unshifted when max_length < 2K - 1,
# i.e. (with max_length = T + K below) when T < K - 1, so only T >= K - 1 is comparable.
_HF_CASES = [(1, 1), (1, 5), (2, 1), (2, 5), (4, 3), (4, 5), (4, 40), (9, 8), (9, 30)]


@pytest.mark.parametrize(("k", "t"), _HF_CASES)
def test_agrees_with_transformers_musicgen(k: int, t: int) -> None:
    """Compare with ``MusicgenForCausalLM.build_delay_pattern_mask``.

    Convention difference: transformers' decoder input starts with a BOS column (the decoder start token,
    here = pad = special token), so its prompt is ``[BOS, c_0, ..., c_{T-1}]`` of length T + 1 and its
    delayed sequence has one extra leading step: ``max_length = T + K`` and ``hf[..., 1:]`` corresponds to
    our ``seq`` (``hf[..., 0]`` is all BOS). We prepend that column here; our pattern has no BOS step.
    """
    pytest.importorskip("transformers")
    b = 2
    model = _hf_model(k, CARD)
    pat = DelayPattern(k, CARD)
    codes = _codes(b, k, t, seed=7 * k + t)
    seq, valid = pat.build(codes)

    bos = torch.full((b, k, 1), CARD, dtype=torch.long)
    # 1) full prompt: every code given -> the pattern mask holds the delayed codes and pad everywhere else
    prompt = torch.cat([bos, codes], dim=-1).reshape(b * k, t + 1)
    _, hf_mask = model.build_delay_pattern_mask(prompt, pad_token_id=CARD, max_length=t + k)
    hf_mask = hf_mask.reshape(b, k, t + k)
    assert not (hf_mask == -1).any()
    assert (hf_mask[..., 0] == CARD).all()
    assert torch.equal(hf_mask[..., 1:] == CARD, ~valid[None].expand(b, -1, -1))
    assert torch.equal(hf_mask[..., 1:], seq)

    # 2) BOS-only prompt: -1 marks the steps to be predicted, which must be exactly our valid steps
    _, hf_mask2 = model.build_delay_pattern_mask(bos.reshape(b * k, 1), pad_token_id=CARD, max_length=t + k)
    hf_mask2 = hf_mask2.reshape(b, k, t + k)
    assert (hf_mask2[..., 0] == CARD).all()
    assert torch.equal(hf_mask2[..., 1:] == -1, valid[None].expand(b, -1, -1))
    assert torch.equal(hf_mask2[..., 1:] == CARD, ~valid[None].expand(b, -1, -1))


# --------------------------------------------------------------------------- bad inputs


def test_bad_constructor_args() -> None:
    with pytest.raises(ValueError, match="n_codebooks"):
        DelayPattern(0, CARD)
    with pytest.raises(ValueError, match="special_token"):
        DelayPattern(4, 0)


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        (torch.zeros(4, 5, dtype=torch.long), "ndim"),
        (torch.zeros(1, 3, 5, dtype=torch.long), "n_codebooks=4"),
        (torch.zeros(1, 4, 5), "integer dtype"),
        (torch.zeros(1, 4, 5, dtype=torch.bool), "integer dtype"),
        (torch.zeros(1, 4, 0, dtype=torch.long), "T >= 1"),
        (torch.full((1, 4, 5), CARD, dtype=torch.long), r"\[0, 1024\)"),
        (torch.full((1, 4, 5), -1, dtype=torch.long), r"\[0, 1024\)"),
    ],
)
def test_build_bad_inputs(codes: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DelayPattern(4, CARD).build(codes)


def test_build_rejects_non_tensor() -> None:
    with pytest.raises(ValueError, match="torch.Tensor"):
        DelayPattern(2, CARD).build([[[1, 2]]])  # type: ignore[arg-type]


def test_revert_bad_inputs() -> None:
    pat = DelayPattern(4, CARD)
    with pytest.raises(ValueError, match="S >= K"):
        pat.revert(torch.zeros(1, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="n_codebooks=4"):
        pat.revert(torch.zeros(1, 2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="integer dtype"):
        pat.revert(torch.zeros(1, 4, 8))
    with pytest.raises(ValueError, match="ndim"):
        pat.revert(torch.zeros(4, 8, dtype=torch.long))


@pytest.mark.parametrize("n", [0, -3, 2.0, True])
def test_valid_mask_bad_length(n) -> None:
    with pytest.raises(ValueError, match="n_frames"):
        DelayPattern(2, CARD).valid_mask(n)
