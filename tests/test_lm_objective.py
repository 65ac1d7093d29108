"""The training objectives (lm/objective.py): one object per objective answers every AR-or-MAGNeT
question, for training, decoding and the workflow."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lm_fixtures import conditions, tiny_model

from instrumentgen.generate.magnet import MagnetSettings
from instrumentgen.generate.run import DECODERS, Decoder
from instrumentgen.generate.settings import decoder_from_dict
from instrumentgen.lm.objective import OBJECTIVES, get_objective, objective_of
from instrumentgen.variants import VARIANTS

SRC = Path(__file__).resolve().parents[1] / "src" / "instrumentgen"
WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"


def test_every_variant_names_a_known_objective_with_a_decoder_section():
    decoder_fields = {f.name for f in dataclasses.fields(Decoder)}
    for variant in VARIANTS.values():
        objective = get_objective(variant.objective)
        assert objective.decoding_section in decoder_fields
        assert objective.decoding_section in DECODERS
    assert set(DECODERS) == decoder_fields == {o.decoding_section for o in OBJECTIVES.values()}
    assert {o.causal for o in OBJECTIVES.values()} == {True, False}


def test_unknown_objective_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="'diffusion' is unknown; valid: ar, magnet"):
        get_objective("diffusion")
    with pytest.raises(ValueError, match="decoding section 'beam'; known: magnet, sampling"):
        decoder_from_dict({"beam": {}})


@pytest.mark.parametrize("name", ["ar", "magnet"])
def test_model_carries_its_configs_objective(name: str):
    model = tiny_model(name)
    assert model.objective is objective_of(model.config) is OBJECTIVES[name]


@pytest.mark.parametrize("name", ["ar", "magnet"])
def test_reduced_loss_is_the_optimised_loss(name: str):
    """The logged loss (``reduce`` of the per-stage sums) is the scalar training optimises."""
    model = tiny_model(name)
    objective = model.objective
    cond = conditions(6)
    codes = torch.randint(0, model.config.codebook_size, (6, model.config.n_codebooks, 10),
                          generator=torch.Generator().manual_seed(0))
    masks = objective.training_masks(6, model.config, 10, np.random.default_rng(0), 3)
    assert (masks is None) == (name == "ar")
    out = objective.loss(model, model.config, codes, cond, masks, None)
    loss = float(out.loss.detach())
    assert objective.reduce(out.ce_sum, out.count) == pytest.approx(loss, rel=1e-5)
    # The two reductions differ whenever stages hold unequal numbers of positions, as MAGNeT's do.
    other = OBJECTIVES["magnet" if name == "ar" else "ar"]
    if name == "magnet":
        assert other.reduce(out.ce_sum, out.count) != pytest.approx(loss, rel=1e-3)


def test_each_objective_refuses_the_others_masks():
    ar, magnet = OBJECTIVES["ar"], OBJECTIVES["magnet"]
    model = tiny_model("ar")
    codes = torch.zeros(2, model.config.n_codebooks, 6, dtype=torch.long)
    masks = magnet.training_masks(2, model.config, 6, np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match="no training masks"):
        ar.loss(model, model.config, codes, conditions(2), masks, None)
    with pytest.raises(ValueError, match="needs training masks"):
        magnet.loss(model, model.config, codes, conditions(2), None, None)


def test_decoder_uses_the_models_objective_for_codes_and_step_counts():
    decoder = Decoder(magnet=MagnetSettings(steps=(2, 1, 1, 1)))
    ar, magnet = tiny_model("ar"), tiny_model("magnet")
    assert decoder.steps(ar, 10) == 10 + ar.config.n_codebooks - 1
    assert decoder.steps(magnet, 10) == 5
    assert decoder.settings_for(ar.objective) is decoder.sampling
    assert decoder.settings_for(magnet.objective) is decoder.magnet
    g = torch.Generator().manual_seed(0)
    for model in (ar, magnet):
        codes = decoder.decode(model, conditions(2), 7, g)
        assert codes.shape == (2, model.config.n_codebooks, 7)


def test_the_workflow_reads_objectives_without_torch():
    """Snakemake parses the workflow (which asks an objective for its decoding section) before every
    run: importing the objectives must not load torch."""
    code = "import sys, instrumentgen.lm.objective; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _name_comparisons(path: Path) -> list[str]:
    """Comparisons with an objective's name (``objective == "magnet"``) in ``path``."""
    names = "|".join(OBJECTIVES)
    pattern = re.compile(rf"""[=!]=\s*["']({names})["']|["']({names})["']\s*[=!]=""")
    return [
        f"{path.name}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
    ]


def test_nothing_branches_on_an_objectives_name():
    """Every AR-or-MAGNeT question goes to the objective object; no module compares names."""
    files = [*SRC.rglob("*.py"), *WORKFLOW.rglob("*.smk")]
    found = [hit for f in files for hit in _name_comparisons(f)]
    assert not found, f"compare to an objective's name (use lm.objective instead): {found}"


def test_the_params_schema_names_the_objectives_there_are():
    """``train.by_objective`` is keyed by objective: its schema enum must list exactly lm.objective's."""
    schema = yaml.safe_load((WORKFLOW / "schemas" / "params.schema.yaml").read_text())
    by_objective = schema["properties"]["train"]["properties"]["by_objective"]
    assert set(by_objective["propertyNames"]["enum"]) == set(OBJECTIVES)
