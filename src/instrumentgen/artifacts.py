"""Where a profile's pipeline puts the files that generation needs: the trained LM of each variant, the
codec and the CLAP model (pretrained weights for the paper profile, fitted models offline).

One definition for the Snakemake rules (``workflow/rules/common.smk``) and the ``instrumentgen make``
command. Paths are relative to the repository root, as the rules write them.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any


def data_dir(params: Mapping[str, Any]) -> str:
    """``data/<profile>``: outputs of different profiles never overwrite each other."""
    return f"data/{params['profile']}"


def weights_file(source: Mapping[str, Any]) -> str:
    """A pretrained weights file: ``weights_dir`` + the file name of its ``url`` (the download's name)."""
    return f"{source['weights_dir']}/{os.path.basename(urllib.parse.urlparse(source['url']).path)}"


def codec_file(params: Mapping[str, Any]) -> str:
    """The codec: pretrained DAC weights (``codec.kind`` dac) or the fitted offline codec."""
    if params["codec"]["kind"] == "dac":
        return weights_file(params["codec"]["dac"])
    return f"{data_dir(params)}/models/codec.npz"


def clap_file(params: Mapping[str, Any]) -> str:
    """The CLAP model: the LAION-CLAP checkpoint (``clap.kind`` laion) or the small offline CLAP."""
    if params["clap"]["kind"] == "laion":
        return weights_file(params["clap"]["laion"])
    return f"{data_dir(params)}/models/clap.npz"


def lm_file(params: Mapping[str, Any], variant: str) -> str:
    """The trained codec LM of ``variant`` (what rule train_variant writes)."""
    return f"{data_dir(params)}/lm/{variant}.pt"
