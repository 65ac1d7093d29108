"""The CLAP quantiser: residual k-means (instrumentgen.lm.kmeans), frozen or EMA codebooks
(lm.conditioners.ResidualVQ), fitted by the trainer on every training note (train.loop.Trainer.build),
identical on every process (deterministic given the seed; broadcast under DDP, see tests/test_train.py).
benchmarks/clap_quantiser.py measures the designs on the tiny profile's caches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from instrumentgen.lm.checkpoint import FORMAT, CheckpointError, load_model, save_atomic
from instrumentgen.lm.conditioners import ConditionEncoder, ResidualVQ
from instrumentgen.lm.config import LMConfig
from instrumentgen.lm.kmeans import kmeans, residual_kmeans
from instrumentgen.lm.model import CodecLM
from instrumentgen.train.loop import SplitFiles, Trainer, TrainRun
from instrumentgen.train.settings import TrainSettings
from instrumentgen.train.synthetic_caches import write_split

os.environ.setdefault("HF_HUB_OFFLINE", "1")
F = torch.nn.functional
LM = {
    "dim": 32,
    "n_layers": 1,
    "n_heads": 2,
    "category_dim": 8,
    "clap_n_q": 3,
    "clap_bins": 16,
    "max_frames": 16,
    "codebook_size": 32,
    "clap_dim": 16,
}


def blobs(n_per: int, centres: torch.Tensor, spread: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_per`` unit vectors around each of ``centres`` ``[G, D]``: ``[G * n_per, D]`` and their group
    ids ``[G * n_per]``."""
    gen = torch.Generator().manual_seed(seed)
    group = torch.arange(len(centres)).repeat_interleave(n_per)
    x = centres[group] + spread * torch.randn(len(group), centres.shape[1], generator=gen)
    return F.normalize(x, dim=-1), group


# ------------------------------------------------------------------------------------------ k-means
def test_kmeans_recovers_separated_clusters():
    centres = torch.tensor([[10.0, 0, 0, 0], [0, 10.0, 0, 0], [0, 0, 10.0, 0]])
    gen = torch.Generator().manual_seed(0)
    x = centres.repeat_interleave(20, dim=0) + 0.1 * torch.randn(60, 4, generator=gen)
    found, counts = kmeans(x, 3, 10, torch.Generator().manual_seed(1))
    order = torch.cdist(centres, found).argmin(dim=1)
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(found[order], x.view(3, 20, 4).mean(dim=1))  # each cluster's mean
    assert counts.tolist() == [20, 20, 20]


def test_kmeans_start_rows_determinism_and_small_data():
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(2))
    a, _ = kmeans(x, 8, 0, torch.Generator().manual_seed(3))
    b, _ = kmeans(x, 8, 0, torch.Generator().manual_seed(3))
    c, _ = kmeans(x, 8, 0, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(a, c)
    same = (a[:, None] == x[None]).all(dim=-1)  # [codes, rows]: distinct rows of the data
    assert (same.sum(dim=1) == 1).all() and len(set(same.float().argmax(dim=1).tolist())) == 8
    few, counts = kmeans(x[:3], 5, 5, torch.Generator().manual_seed(0))  # fewer rows than codes
    assert all(bool((few == row).all(dim=1).any()) for row in x[:3]) and int(counts.sum()) == 3
    with pytest.raises(ValueError, match=r"non-empty \[N, D\].*\(0, 5\)"):
        kmeans(x[:0], 2, 1, torch.Generator())
    with pytest.raises(ValueError, match="k=0"):
        kmeans(x, 0, 1, torch.Generator())


def test_residual_kmeans_error_falls_stage_by_stage():
    x = torch.randn(300, 8, generator=torch.Generator().manual_seed(5))
    books = residual_kmeans(x, 3, 16, 10, torch.Generator().manual_seed(0))
    assert books.shape == (3, 16, 8)
    rvq = ResidualVQ(8, 3, 16)
    rvq.initialize(x, torch.Generator().manual_seed(0), iters=10)
    torch.testing.assert_close(rvq.codebooks, books, atol=0, rtol=0)
    rvq.eval()
    errors = [float((x - prefix_reconstruction(rvq, x, n)).norm()) for n in range(4)]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False)), errors


def prefix_reconstruction(rvq: ResidualVQ, x: torch.Tensor, n: int) -> torch.Tensor:
    """The reconstruction of ``x`` by the first ``n`` stages of ``rvq``."""
    _, codes = rvq(x)
    out = torch.zeros_like(x)
    for q in range(n):
        out = out + rvq.codebooks[q][codes[:, q]]
    return out


# ------------------------------------------------------------------------------- collapse (issue 13)
def fixed_run(tmp: Path, lm: dict | None = None, variant: str = "fixed", steps: int = 2) -> TrainRun:
    """A run whose training instruments' notes spread widely around their centres (as real notes
    across pitch), so the training notes cover the space while the fixed scheme sees 6 points."""
    caches = {
        s: write_split(tmp / "caches", s, 6, 24, 12, 32, 16, clap_spread=1.0) for s in ("train", "valid")
    }
    settings = TrainSettings.from_dict({"steps": steps, "batch_size": 8, "threads": 1, "warmup_steps": 1})
    train, valid = SplitFiles(**caches["train"]), SplitFiles(**caches["valid"])
    return TrainRun(
        variant, lm or LM, settings, 7, train, valid, tmp / "model.pt", tmp / "results", tmp / "ckpt"
    )


def test_fixed_scheme_quantiser_represents_unseen_instruments(tmp_path: Path):
    """Fitted only on the fixed scheme's one embedding per training instrument, the quantiser snapped a
    note of an unseen instrument onto the nearest training reference (cosine to itself 0.58 here, as the
    raw nearest-reference cosine 0.60). The trainer fits it on every training note: 0.92."""
    trainer = Trainer(fixed_run(tmp_path))
    trainer.build()
    rvq = trainer.model.conditions.rvq
    rvq.eval()
    x = F.normalize(trainer.valid_data.clap, dim=-1)  # 6 instruments the training split does not have
    reference_rows = torch.from_numpy(trainer.train_data.pairing.reference_row)
    refs = F.normalize(trainer.train_data.clap[reference_rows], dim=-1)
    quantised, _ = rvq(x)
    self_cos = float(F.cosine_similarity(quantised, x).mean())
    snapped = float((x @ refs.T).max(dim=1).values.mean())  # what snapping onto a reference would give
    assert self_cos > 0.85, self_cos
    assert self_cos > snapped + 0.2, (self_cos, snapped)


def test_trainer_fits_one_quantiser_for_every_scheme(tmp_path: Path):
    """The quantiser depends on the training notes and the seed only, not on the variant's pairing."""
    books = {}
    for variant in ("baseline", "random", "fixed", "magnet"):
        trainer = Trainer(fixed_run(tmp_path / variant, variant=variant))
        trainer.build()
        books[variant] = trainer.model.conditions.rvq.codebooks
    expected = ResidualVQ(16, 3, 16)
    expected.initialize(F.normalize(trainer.train_data.clap, dim=-1), torch.Generator().manual_seed(7))
    for variant, book in books.items():
        torch.testing.assert_close(book, expected.codebooks, atol=0, rtol=0, msg=variant)


def test_ema_quantiser_fed_few_points_keeps_its_other_codes():
    """With EMA updates, training on only a few distinct embeddings (the fixed scheme) moves the codes
    they use onto them, but the codes fitted to the other notes stay: a new point is still represented
    far better than by snapping it onto the nearest training point (0.70 here, frozen 0.72; fitted on the
    few points alone, as before, 0.28)."""
    gen = torch.Generator().manual_seed(0)
    train, group = blobs(40, torch.randn(8, 16, generator=gen), 1.0, seed=1)
    new, _ = blobs(20, torch.randn(4, 16, generator=gen), 1.0, seed=2)
    references = train[torch.arange(8) * 40]
    rvq = ResidualVQ(16, 3, 32, ema=True)
    rvq.initialize(train, torch.Generator().manual_seed(3))
    rvq.train()
    for step in range(300):
        rows = torch.randint(0, 8, (16,), generator=torch.Generator().manual_seed(step))
        rvq(references[rows])
    rvq.eval()
    quantised, _ = rvq(new)
    self_cos = float(F.cosine_similarity(quantised, new).mean())
    snapped = float((new @ references.T).max(dim=1).values.mean())
    assert self_cos > 0.6 and self_cos > snapped + 0.3, (self_cos, snapped)
    moved, _ = rvq(references)
    assert float(F.cosine_similarity(moved, references).min()) > 0.99  # the training points: memorised


# ------------------------------------------------------------------------------------------ modes
def test_frozen_quantiser_does_not_move_in_training():
    enc = ConditionEncoder(LMConfig(**LM))
    assert not enc.rvq.ema
    enc.initialize_clap(torch.randn(50, 16, generator=torch.Generator().manual_seed(0)), torch.Generator())
    before = {name: buf.clone() for name, buf in enc.rvq.named_buffers()}
    enc.train()
    enc.rvq(torch.randn(32, 16))
    for name, buf in enc.rvq.named_buffers():
        assert torch.equal(buf, before[name]), name
    assert ConditionEncoder(LMConfig(**LM, clap_quantiser="ema")).rvq.ema


def test_two_quantisers_with_the_same_seed_and_data_stay_identical():
    """What keeps DDP processes in step: initialisation is a function of (data, seed), and the EMA
    update a function of the batch (its statistics are all-reduced under DDP)."""
    data = F.normalize(torch.randn(200, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    a, b, c = (ResidualVQ(16, 3, 16, ema=True) for _ in range(3))
    a.initialize(data, torch.Generator().manual_seed(9))
    b.initialize(data.clone(), torch.Generator().manual_seed(9))
    c.initialize(data, torch.Generator().manual_seed(10))
    assert not torch.equal(a.codebooks, c.codebooks)
    a.train(), b.train()
    for step in range(20):
        batch = data[torch.randint(0, 200, (8,), generator=torch.Generator().manual_seed(step))]
        keep = torch.rand(8, generator=torch.Generator().manual_seed(100 + step)) > 0.3
        a(batch, update=keep)
        b(batch, update=keep)
    for (name, x), (_, y) in zip(a.named_buffers(), b.named_buffers(), strict=True):
        assert torch.equal(x, y), name


def test_unknown_quantiser_and_mismatching_checkpoint_are_named(tmp_path: Path):
    with pytest.raises(ValueError, match="clap_quantiser 'kmeans' is unknown; valid: frozen, ema"):
        LMConfig(clap_quantiser="kmeans")
    assert LMConfig().clap_quantiser == "frozen"
    config = LMConfig(**LM, clap_quantiser="ema")
    model = CodecLM(config)
    model.conditions.initialize_clap(torch.randn(40, 16), torch.Generator().manual_seed(0))
    path = tmp_path / "model.pt"
    save_atomic({"format": FORMAT, "config": config.to_dict(), "model": model.state_dict()}, path)
    with pytest.raises(CheckpointError, match="clap_quantiser: 'ema' != 'frozen'"):
        load_model(path, LMConfig(**LM))
    loaded, _ = load_model(path, config)
    torch.testing.assert_close(loaded.conditions.rvq.codebooks, model.conditions.rvq.codebooks)
    # a model file written before the key existed loads as the default (frozen): at inference both
    # kinds quantise alike, by nearest codes
    old = config.to_dict()
    del old["clap_quantiser"]
    save_atomic({"format": FORMAT, "config": old, "model": model.state_dict()}, path)
    assert load_model(path, LMConfig(**LM))[0].config.clap_quantiser == "frozen"


@pytest.mark.parametrize("quantiser", ["frozen", "ema"])
def test_training_moves_the_quantiser_only_with_ema(tmp_path: Path, quantiser: str):
    trainer = Trainer(fixed_run(tmp_path, {**LM, "clap_quantiser": quantiser}, steps=3))
    trainer.build()
    before = trainer.model.conditions.rvq.codebooks.clone()
    for _ in range(3):
        trainer.train_step()
    moved = not torch.equal(trainer.model.conditions.rvq.codebooks, before)
    assert moved == (quantiser == "ema")
    assert np.isfinite(trainer.model.conditions.rvq.codebooks.numpy()).all()
