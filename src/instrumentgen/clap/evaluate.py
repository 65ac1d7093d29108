"""Text→audio retrieval of a CLAP model on a split whose instruments have captions.

    python -m instrumentgen.clap.evaluate --model PATH --store data/tiny/resampled/test \\
        --captions data/tiny/synthetic/captions.json --out retrieval.json

``--model``: a small CLAP ``.npz`` or a LAION-CLAP checkpoint (``--amodel``/``--tmodel``).
Writes the report of :func:`instrumentgen.clap.retrieval.retrieval_report` plus timings, atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from instrumentgen.atomic import write_json_atomic
from instrumentgen.clap.base import AudioTextEmbedder
from instrumentgen.clap.loading import load_embedder
from instrumentgen.clap.pairs import instrument_captions, load_captions, map_store
from instrumentgen.clap.retrieval import retrieval_report
from instrumentgen.data.store import open_store

log = logging.getLogger("instrumentgen.clap.evaluate")


def evaluate_retrieval(model: AudioTextEmbedder, store_prefix: str | Path, captions_path: str | Path, *,
                       batch_size: int = 64, progress: bool = True) -> dict[str, Any]:
    """Embed every note of the split and its instruments' captions; the retrieval report."""
    store = open_store(store_prefix)
    index = store.index
    instruments = sorted(index["instrument_str"].astype(str).unique())
    captions = instrument_captions(instruments, load_captions(captions_path), captions_path)
    t0 = time.perf_counter()
    audio = map_store(store, model.embed_audio, batch_size=batch_size, desc="embed audio", progress=progress)
    t_audio = time.perf_counter() - t0
    text = model.embed_text(captions)
    report = retrieval_report(audio, index["instrument_str"].astype(str).tolist(),
                              index["instrument_family_str"].astype(str).tolist(), text, instruments)
    report["captions"] = dict(zip(instruments, captions, strict=True))
    report["store"] = str(store_prefix)
    report["embed_audio_s"] = round(t_audio, 3)
    report["notes_per_s"] = round(len(store) / t_audio, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="small CLAP .npz or LAION-CLAP checkpoint")
    p.add_argument("--store", required=True, help="resampled split prefix, e.g. data/tiny/resampled/test")
    p.add_argument("--captions", required=True, help="JSON {instrument_str: caption}")
    p.add_argument("--out", required=True, help="report JSON to write")
    p.add_argument("--amodel", help="LAION-CLAP audio model (default HTSAT-base)")
    p.add_argument("--tmodel", help="LAION-CLAP text model (default roberta)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    kwargs = {k: v for k, v in (("amodel", args.amodel), ("tmodel", args.tmodel)) if v}
    model = load_embedder(args.model, **kwargs)
    report = evaluate_retrieval(model, args.store, args.captions, batch_size=args.batch_size,
                                progress=not args.no_progress)
    report["model"] = str(args.model)
    write_json_atomic(args.out, report)
    t2a = report["text_to_audio"]["instrument_level"]["instrument"]
    log.info("text→audio over %d instruments: R@1 %.3f (chance %.3f), R@5 %.3f (chance %.3f) -> %s",
             report["instruments"], t2a["recall@1"], t2a["chance_recall@1"], t2a["recall@5"],
             t2a["chance_recall@5"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
