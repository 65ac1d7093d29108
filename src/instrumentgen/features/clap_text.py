"""CLAP text embeddings of the T2I prompts to one Parquet file (rule ``embed_prompts``): columns
``id``, ``text``, ``source`` and ``feature`` ``[D]`` float32.

    python -m instrumentgen.features.clap_text --model CLAP --prompts workflow/prompts/paper.yaml
        --out data/<p>/features/clap_text/prompts.parquet
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from instrumentgen.atomic import atomic_path
from instrumentgen.clap.loading import load_embedder
from instrumentgen.features import cli
from instrumentgen.features.cache import FeatureError, fixed_size_array
from instrumentgen.prompts import load_prompts

log = logging.getLogger(__name__)


def cache_text_embeddings(args: argparse.Namespace) -> None:
    prompts = load_prompts(args.prompts)
    model = load_embedder(args.model, device=args.device)
    emb = np.asarray(model.embed_text([p.text for p in prompts]), dtype=np.float32)
    if emb.shape[0] != len(prompts) or not np.isfinite(emb).all():
        raise FeatureError(f"{args.model}: bad text embeddings for {args.prompts} (shape {emb.shape})")
    table = pa.table({"id": [p.id for p in prompts], "text": [p.text for p in prompts],
                      "source": [p.source for p in prompts], "feature": fixed_size_array(emb)})
    with atomic_path(args.out, suffix=".parquet") as tmp:
        pq.write_table(table, tmp)
    log.info("%s: %d prompt embeddings of dim %d", args.out, len(prompts), emb.shape[1])


def main(argv: list[str] | None = None) -> None:
    ap = cli.parser("instrumentgen.features.clap_text", __doc__, store=False)
    ap.add_argument("--prompts", type=Path, required=True)
    cli.run(cache_text_embeddings, ap.parse_args(argv))


if __name__ == "__main__":
    main()
