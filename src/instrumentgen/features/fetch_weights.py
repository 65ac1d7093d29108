"""CLI of the ``fetch_weights`` rule (DAC, LAION-CLAP, VGGish): download pretrained weights (paper
profile).

    python -m instrumentgen.features.fetch_weights {dac,clap,vggish} --dir DIR --url URL

Skips the download when the file is already in ``DIR`` (placed there by hand, say); records its
SHA-256 next to it on first use and checks it on every later load, before anything is unpickled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrumentgen.features.fetch_weights", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["dac", "clap", "vggish"])
    ap.add_argument("--dir", type=Path, required=True, help="folder for the weights file")
    ap.add_argument("--url", required=True)
    ap.add_argument("--sha256", help="the published SHA-256 (or its prefix) the file must have (vggish)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.sha256 and args.what != "vggish":
        ap.error("--sha256 applies to the VGGish weights only (DAC and CLAP publish no digest)")
    try:
        if args.what == "dac":
            from instrumentgen.codec.dac_codec import fetch_dac_weights

            path = fetch_dac_weights(args.dir, args.url)
        elif args.what == "clap":
            from instrumentgen.clap.laion import fetch_clap_weights

            path = fetch_clap_weights(args.dir, args.url)
        else:
            from instrumentgen.vggish.model import fetch_vggish_weights

            path = fetch_vggish_weights(args.dir, args.url, sha256=args.sha256)
    except (OSError, RuntimeError, ValueError) as e:  # download/checksum errors name URL and path
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    logging.getLogger(__name__).info("weights ready: %s", path)


if __name__ == "__main__":
    main()
