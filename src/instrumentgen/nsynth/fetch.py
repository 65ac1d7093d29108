"""Fetch one NSynth split: download (or reuse) its archive, verify it, extract it, check it.

``python -m instrumentgen.nsynth.fetch --split valid --base-url URL --archive-dir DIR --out-root DIR``

An archive placed in ``archive_dir`` beforehand (downloaded elsewhere) is used as is; its
SHA-256 is recorded next to it on first use and checked on every later use.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from instrumentgen.download import (
    DownloadError,
    DownloadNetworkError,
    checksum_path,
    download,
    record_checksum,
    verify_checksum,
    verify_size,
)
from instrumentgen.nsynth import metadata
from instrumentgen.nsynth.archive import ArchiveError, safe_extract

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://download.magenta.tensorflow.org/datasets/nsynth"
DEFAULT_ARCHIVE_DIR = Path("data/downloads")


def archive_name(split: str) -> str:
    """File name of a split's archive: ``nsynth-{split}.jsonwav.tar.gz``."""
    return f"nsynth-{split}.jsonwav.tar.gz"


def archive_url(base_url: str, split: str) -> str:
    """Download URL of a split's archive under ``base_url``."""
    return f"{base_url.rstrip('/')}/{archive_name(split)}"


def _check_split(split: str) -> None:
    """Raise ``ValueError`` unless ``split`` is one of :data:`metadata.SPLITS`."""
    if split not in metadata.SPLITS:
        raise ValueError(f"unknown NSynth split {split!r}; expected one of {', '.join(metadata.SPLITS)}")


def _obtain_archive(split: str, base_url: str, archive: Path, *, retries: int, timeout: float,
                    progress: bool, backoff: float) -> None:
    """Download the split's archive to ``archive`` unless it is already there."""
    if archive.exists():
        log.info("using existing archive %s", archive)
        return
    url = archive_url(base_url, split)
    log.info("downloading %s -> %s", url, archive)
    try:
        download(url, archive, retries=retries, timeout=timeout, progress=progress, backoff=backoff)
    except DownloadNetworkError as e:
        raise DownloadError(
            f"{e}. If you downloaded {archive_name(split)} elsewhere, put it at {archive} and run again; "
            f"the offline demo runs with the tiny profile (`make demo`)") from e


def _sanity_check(split_dir: Path, archive: Path) -> None:
    """Load ``examples.json``; on failure remove ``split_dir`` and raise :class:`ArchiveError`."""
    try:
        examples = metadata.load_examples(split_dir)
    except (metadata.MetadataError, FileNotFoundError) as e:
        shutil.rmtree(split_dir, ignore_errors=True)
        raise ArchiveError(f"{archive}: extracted data is not a valid NSynth split ({e}); "
                           f"removed {split_dir}") from e
    log.info("%s: %d examples", split_dir, len(examples))


def fetch_split(split: str, *, base_url: str, archive_dir: Path, out_root: Path, retries: int = 5,
                timeout: float = 60, progress: bool = True, backoff: float = 1.0,
                expected_size: int | None = None) -> Path:
    """Make ``out_root/nsynth-{split}/`` exist with a valid ``examples.json``; return that folder.

    Skips everything if ``examples.json`` is already there. Otherwise uses
    ``archive_dir/nsynth-{split}.jsonwav.tar.gz`` if present, else downloads it there; checks
    ``expected_size`` (when given) and the SHA-256 record if one exists; extracts and validates
    it; and only then records its SHA-256 (so a corrupt archive never gets a record that would
    later reject a good copy).
    """
    _check_split(split)
    archive_dir, out_root = Path(archive_dir), Path(out_root)
    top = f"nsynth-{split}"
    split_dir = out_root / top
    if (split_dir / "examples.json").is_file():
        log.info("%s already present; skipping", split_dir)
        return split_dir
    archive = archive_dir / archive_name(split)
    _obtain_archive(split, base_url, archive, retries=retries, timeout=timeout, progress=progress,
                    backoff=backoff)
    verify_size(archive, expected_size)
    recorded = checksum_path(archive).exists()
    if recorded:
        verify_checksum(archive, progress=progress)
    split_dir = safe_extract(archive, out_root, top)
    _sanity_check(split_dir, archive)
    if not recorded:  # only an archive that extracted and validated gets its checksum recorded
        record_checksum(archive, progress=progress)
    log.info("NSynth %s split ready at %s", split, split_dir)
    return split_dir


def _parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m instrumentgen.nsynth.fetch",
                                description=__doc__.splitlines()[0])
    p.add_argument("--split", required=True, choices=metadata.SPLITS)
    p.add_argument("--base-url", default=DEFAULT_BASE_URL)
    p.add_argument("--archive-dir", type=Path, default=DEFAULT_ARCHIVE_DIR,
                   help="where archives are downloaded to, or placed beforehand")
    p.add_argument("--out-root", type=Path, required=True, help="parent folder of nsynth-{split}/")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry point; exits with status 1 and ``error: ...`` on stderr on failure."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        fetch_split(args.split, base_url=args.base_url, archive_dir=args.archive_dir, out_root=args.out_root,
                    retries=args.retries, timeout=args.timeout, progress=not args.no_progress)
    except (DownloadError, ArchiveError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
