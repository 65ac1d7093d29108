"""Cache CLAP audio embeddings ``[D]`` float32 of every note of a split (rule ``embed_audio``).

    python -m instrumentgen.features.clap_audio --model CLAP --store data/<p>/resampled/<split>
        --out data/<p>/features/clap_audio/<split>.parquet
"""

from __future__ import annotations

import argparse

from instrumentgen.clap.loading import load_embedder
from instrumentgen.codedeps import loaded_code_digest
from instrumentgen.data.store import open_store
from instrumentgen.download import loaded_file_digest
from instrumentgen.features import cli
from instrumentgen.features.cache import cache_features


def cache_audio_embeddings(args: argparse.Namespace) -> None:
    model = load_embedder(args.model, device=args.device)
    store = open_store(args.store)
    params = {"model_sha256": loaded_file_digest(args.model), "code": loaded_code_digest()}
    cache_features(store, args.out, lambda a: model.embed_audio(a, store.sample_rate), name="clap_audio",
                   params=params, batch_size=args.batch_size)


def main(argv: list[str] | None = None) -> None:
    cli.run(cache_audio_embeddings, cli.parser("instrumentgen.features.clap_audio", __doc__).parse_args(argv))


if __name__ == "__main__":
    main()
