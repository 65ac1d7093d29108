"""SF2 export: a SoundFont 2.01 bank with one preset → one instrument → one zone per sample.

Layout (SoundFont 2.01 spec, sections 5–8; all integers little-endian)::

    RIFF 'sfbk'
      LIST 'INFO': ifil (2.01), isng ("EMU8000"), INAM (bank name), ISFT (tool), ICMT (comment)
      LIST 'sdta': smpl — 16-bit PCM of every sample, each followed by 46 zero points
      LIST 'pdta': phdr pbag pmod pgen inst ibag imod igen shdr, each ending in its terminal record

The preset (bank 0, program 0) has one zone whose only generator is ``instrument`` 0. The
instrument has one zone per :class:`~instrumentgen.export.zones.Zone`, with generators in the
order the spec requires (``keyRange`` first, ``velRange`` second, ``sampleID`` last)::

    keyRange, velRange, releaseVolEnv, sampleModes = 0 (no loop), overridingRootKey, sampleID

The samples are one-shot notes (they end with their own decay), so they are not looped; a note
held longer than its sample stops when the sample ends, and a note-off fades out over
``release_s``. Each sample header still carries valid loop points (8 points inside either end),
as the spec asks of every sample, and samples shorter than the spec's 48 points are zero-padded.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instrumentgen.atomic import atomic_path
from instrumentgen.export.sfz import RELEASE_S
from instrumentgen.export.zones import Zone

SAMPLE_GAP = 46  # zero points after every sample (spec 6.1: "at least 46")
MIN_SAMPLE_POINTS = 48  # spec 7.10: a sample holds at least 48 data points
LOOP_MARGIN = 8  # loop points at least 8 points inside the sample (spec 7.10)
NAME_CHARS = 19  # 20-byte name fields, always zero-terminated

# Generator operators (spec 8.1.2).
GEN_RELEASE_VOL_ENV = 38
GEN_INSTRUMENT = 41
GEN_KEY_RANGE = 43
GEN_VEL_RANGE = 44
GEN_SAMPLE_ID = 53
GEN_SAMPLE_MODES = 54
GEN_OVERRIDING_ROOT_KEY = 58
MONO_SAMPLE = 1  # SFSampleLink monoSample


@dataclass(frozen=True)
class Sf2Sample:
    """One mono sample: ``pcm`` int16 ``[T]`` at ``sample_rate`` Hz."""

    pcm: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.pcm.ndim != 1 or self.pcm.dtype != np.int16 or self.pcm.size == 0:
            raise ValueError(f"SF2 sample PCM must be non-empty 1-D int16, got {self.pcm.dtype} "
                             f"of shape {self.pcm.shape}")
        if not 0 < int(self.sample_rate) < 2**32:
            raise ValueError(f"SF2 sample rate must be a positive integer (Hz), got {self.sample_rate!r}")


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio ``[T]`` in [-1, 1] → int16 ``[T]`` (× 32768, rounded, clipped to the int16 range).

    Exact for audio read from 16-bit PCM files (whose float values are ``k / 32768``).
    """
    audio = np.asarray(audio, dtype=np.float64)
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def timecents(seconds: float) -> int:
    """An SF2 envelope time in timecents, ``1200 · log2(seconds)``, in the int16 range."""
    if not seconds > 0:
        raise ValueError(f"SF2 envelope time must be > 0 seconds, got {seconds!r}")
    return int(np.clip(round(1200.0 * math.log2(seconds)), -32768, 32767))


def _chunk(cid: bytes, data: bytes) -> bytes:
    """A RIFF chunk: 4-byte id, 32-bit size, data, one pad byte if the size is odd."""
    return cid + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def _ascii(text: str) -> bytes:
    return " ".join(str(text).split()).encode("ascii", errors="replace")


def _zstr(text: str, limit: int = 255) -> bytes:
    """An INFO string: ASCII, zero-terminated, padded to an even size (the pad is a second zero)."""
    data = _ascii(text)[:limit] + b"\0"
    return data + (b"\0" if len(data) % 2 else b"")


def _name20(text: str) -> bytes:
    """A 20-byte zero-padded name field (at most 19 characters)."""
    return _ascii(text)[:NAME_CHARS].ljust(20, b"\0")


def _info(name: str, comment: str) -> bytes:
    chunks = [_chunk(b"ifil", struct.pack("<HH", 2, 1)), _chunk(b"isng", _zstr("EMU8000")),
              _chunk(b"INAM", _zstr(name or "instrumentgen")), _chunk(b"ISFT", _zstr("instrumentgen"))]
    if comment:
        chunks.append(_chunk(b"ICMT", _zstr(comment, limit=65534)))
    return _list(b"INFO", *chunks)


def _sample_data(cells: Sequence[tuple[int, int]], samples: Mapping[tuple[int, int], Sf2Sample],
                 name: str) -> tuple[bytes, bytes]:
    """The ``smpl`` chunk and the ``shdr`` chunk of ``cells`` (in order, then the EOS record)."""
    pcm, headers, offset = [], [], 0
    for pitch, velocity in cells:
        sample = samples[(pitch, velocity)]
        data = sample.pcm
        if data.size < MIN_SAMPLE_POINTS:
            data = np.pad(data, (0, MIN_SAMPLE_POINTS - data.size))
        start, end = offset, offset + data.size
        pcm += [data.astype("<i2").tobytes(), bytes(2 * SAMPLE_GAP)]
        offset = end + SAMPLE_GAP
        headers.append(struct.pack("<20sIIIIIBbHH", _name20(f"{name[:10]}-{pitch}-{velocity}"), start, end,
                                   start + LOOP_MARGIN, end - LOOP_MARGIN, int(sample.sample_rate), pitch,
                                   0, 0, MONO_SAMPLE))
    headers.append(struct.pack("<20sIIIIIBbHH", _name20("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0))
    return _chunk(b"smpl", b"".join(pcm)), _chunk(b"shdr", b"".join(headers))


def _gen(oper: int, amount: int, fmt: str = "H") -> bytes:
    return struct.pack("<H" + fmt, oper, amount)


def _range_gen(oper: int, lo: int, hi: int) -> bytes:
    return struct.pack("<HBB", oper, lo, hi)


def _instrument_zone(zone: Zone, sample_id: int, release: int) -> list[bytes]:
    """The generators of one instrument zone, in spec order (ranges first, sampleID last)."""
    return [_range_gen(GEN_KEY_RANGE, zone.lokey, zone.hikey),
            _range_gen(GEN_VEL_RANGE, zone.lovel, zone.hivel),
            _gen(GEN_RELEASE_VOL_ENV, release, "h"),
            _gen(GEN_SAMPLE_MODES, 0),
            _gen(GEN_OVERRIDING_ROOT_KEY, zone.keycenter),
            _gen(GEN_SAMPLE_ID, sample_id)]


def _bags(gen_counts: Sequence[int]) -> bytes:
    """Bag records (generator index, modulator index) for zones with ``gen_counts`` generators
    and no modulators, then the terminal record."""
    starts = np.concatenate([[0], np.cumsum(gen_counts)]).astype(int)
    return b"".join(struct.pack("<HH", int(s), 0) for s in starts)


def _hydra(zones: Sequence[Zone], sample_ids: Mapping[tuple[int, int], int], shdr: bytes,
           name: str, release_s: float) -> bytes:
    release = timecents(release_s)
    phdr = (struct.pack("<20sHHHIII", _name20(name), 0, 0, 0, 0, 0, 0)
            + struct.pack("<20sHHHIII", _name20("EOP"), 0, 0, 1, 0, 0, 0))
    pgen = _gen(GEN_INSTRUMENT, 0) + _gen(0, 0)
    igens = [_instrument_zone(z, sample_ids[z.cell], release) for z in zones]
    inst = struct.pack("<20sH", _name20(name), 0) + struct.pack("<20sH", _name20("EOI"), len(zones))
    no_mods = bytes(10)  # the terminal modulator record
    igen = b"".join(b"".join(g) for g in igens) + _gen(0, 0)  # then the terminal generator
    ibag = _bags([len(g) for g in igens])
    return _list(b"pdta",
                 _chunk(b"phdr", phdr), _chunk(b"pbag", _bags([1])), _chunk(b"pmod", no_mods),
                 _chunk(b"pgen", pgen), _chunk(b"inst", inst), _chunk(b"ibag", ibag),
                 _chunk(b"imod", no_mods), _chunk(b"igen", igen), shdr)


def sf2_bytes(zones: Sequence[Zone], samples: Mapping[tuple[int, int], Sf2Sample], *, name: str,
              release_s: float = RELEASE_S, comment: str = "") -> bytes:
    """The SF2 file for ``zones``; ``samples[(pitch, velocity)]`` is each zone's cell's sample.

    ``name``: bank, preset and instrument name (ASCII, names cut to 19 characters);
    ``release_s``: volume-envelope release in seconds; ``comment``: the ICMT text (optional).
    """
    if not zones:
        raise ValueError("SF2 export needs at least one zone")
    cells = list(dict.fromkeys(z.cell for z in zones))
    missing = [c for c in cells if c not in samples]
    if missing:
        raise KeyError(f"no SF2 sample for cells (pitch, velocity) {missing}")
    smpl, shdr = _sample_data(cells, samples, name)
    sample_ids = {cell: i for i, cell in enumerate(cells)}
    body = _info(name, comment) + _list(b"sdta", smpl) + _hydra(zones, sample_ids, shdr, name, release_s)
    return _chunk(b"RIFF", b"sfbk" + body)


def write_sf2(path: str | os.PathLike, zones: Sequence[Zone], samples: Mapping[tuple[int, int], Sf2Sample], *,
              name: str, release_s: float = RELEASE_S, comment: str = "") -> Path:
    """Write :func:`sf2_bytes` to ``path`` atomically and return ``path``."""
    path = Path(path)
    data = sf2_bytes(zones, samples, name=name, release_s=release_s, comment=comment)
    with atomic_path(path, suffix=".sf2") as tmp:
        tmp.write_bytes(data)
    return path
