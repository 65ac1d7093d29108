"""SFZ export: a plain-text sampler map (sfzformat.com), one ``<region>`` per zone.

The file holds a ``<global>`` header with the amplitude-envelope release (so that a note-off fades
out instead of clicking) and ``loop_mode=no_loop`` (the samples are one-shot notes that end with
their own decay; a held key stops when its sample ends), then one region per zone::

    <region> sample=samples/name-60-100.wav lokey=58 hikey=62 lovel=88 hivel=113 pitch_keycenter=60

Sample paths are relative to the SFZ file, with forward slashes, as every SFZ player expects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from instrumentgen.atomic import write_text_atomic
from instrumentgen.export.zones import Zone

RELEASE_S = 0.3  # amplitude-envelope release after note-off, seconds


def sfz_text(zones: Sequence[Zone], samples: Mapping[tuple[int, int], str], *, name: str,
             release_s: float = RELEASE_S) -> str:
    """The SFZ text for ``zones``; ``samples[(pitch, velocity)]`` is each cell's sample path
    relative to the SFZ file (POSIX form). ``release_s``: envelope release in seconds (> 0)."""
    if not release_s > 0:
        raise ValueError(f"SFZ release_s must be > 0 seconds, got {release_s!r}")
    title = " ".join(str(name).split())
    lines = [f"// {title}: sample-based instrument exported by instrumentgen", "",
             "<global>", f"ampeg_release={release_s:g}", "loop_mode=no_loop", ""]
    for zone in zones:
        try:
            sample = samples[zone.cell]
        except KeyError:
            raise KeyError(f"no sample path for cell (pitch, velocity) = {zone.cell}") from None
        lines.append(f"<region> sample={_sample_path(sample)} lokey={zone.lokey} hikey={zone.hikey} "
                     f"lovel={zone.lovel} hivel={zone.hivel} pitch_keycenter={zone.keycenter}")
    return "\n".join(lines) + "\n"


def _sample_path(sample: str | os.PathLike) -> str:
    """``sample`` as a relative POSIX path, or a ValueError naming it."""
    text = str(sample).replace(os.sep, "/")
    path = PurePosixPath(text)
    if path.is_absolute() or not text or any(c in text for c in "\r\n"):
        raise ValueError(f"SFZ sample path must be relative and on one line, got {str(sample)!r}")
    return text


def write_sfz(path: str | os.PathLike, zones: Sequence[Zone], samples: Mapping[tuple[int, int], str], *,
              name: str, release_s: float = RELEASE_S) -> Path:
    """Write :func:`sfz_text` to ``path`` atomically and return ``path``."""
    path = Path(path)
    write_text_atomic(path, sfz_text(zones, samples, name=name, release_s=release_s))
    return path
