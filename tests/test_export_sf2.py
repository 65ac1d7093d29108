"""SF2 export: sf2utils (an independent SoundFont 2 parser) reads back the preset, the instrument's
zones (key/velocity ranges, root keys, generator order), the sample headers and the sample data."""

from __future__ import annotations

import io
import logging
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from instrumentgen.export.sf2 import (
    GEN_KEY_RANGE,
    GEN_SAMPLE_ID,
    GEN_VEL_RANGE,
    SAMPLE_GAP,
    Sf2Sample,
    sf2_bytes,
    timecents,
    to_pcm16,
    write_sf2,
)
from instrumentgen.export.zones import plan_zones

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # sf2utils imports audioop
    from sf2utils.sf2parse import Sf2File

SR = 22050
CELLS = [(40, 25), (40, 100), (52, 50), (64, 100), (64, 127), (76, 25), (90, 127)]
PDTA = [b"phdr", b"pbag", b"pmod", b"pgen", b"inst", b"ibag", b"imod", b"igen", b"shdr"]


def make_samples(cells=CELLS) -> dict:
    rng = np.random.default_rng(0)
    # one sample shorter than the spec's 48-point minimum (it is zero-padded)
    lengths = [20] + [int(n) for n in rng.integers(48, 3000, len(cells) - 1)]
    return {cell: Sf2Sample(rng.integers(-32768, 32768, n).astype(np.int16), SR)
            for cell, n in zip(cells, lengths, strict=True)}


def riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(id, data offset, size) of the chunks in ``data[start:end]``, checking that sizes add up."""
    chunks, pos = [], start
    while pos < end:
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append((cid, pos + 8, size))
        pos += 8 + size + size % 2
    assert pos == end, "chunk sizes must add up to the enclosing chunk"
    return chunks


def parse(data: bytes, caplog) -> Sf2File:
    with caplog.at_level(logging.WARNING):
        parsed = Sf2File(io.BytesIO(data))
        _ = parsed.presets, parsed.instruments, parsed.samples, parsed.info
    assert [r.getMessage() for r in caplog.records] == [], "sf2utils warned about the file"
    return parsed


def test_riff_layout():
    data = sf2_bytes(plan_zones(CELLS), make_samples(), name="layout")
    assert data[:4] == b"RIFF" and data[8:12] == b"sfbk"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    top = riff_chunks(data, 12, len(data))
    assert [(c, data[o:o + 4]) for c, o, _ in top] == [(b"LIST", k) for k in (b"INFO", b"sdta", b"pdta")]
    info, sdta, pdta = (riff_chunks(data, o + 4, o + s) for _, o, s in top)
    assert [c for c, _, _ in info] == [b"ifil", b"isng", b"INAM", b"ISFT"]
    _, o, _ = info[0]
    assert struct.unpack("<HH", data[o:o + 4]) == (2, 1)
    assert all(s % 2 == 0 and data[o + s - 1] == 0 for c, o, s in info[1:])  # zero-terminated, even
    assert [c for c, _, _ in sdta] == [b"smpl"]
    assert [c for c, _, _ in pdta] == PDTA
    record = dict(zip(PDTA, (38, 4, 10, 4, 22, 4, 10, 4, 46), strict=True))
    assert all(s % record[c] == 0 for c, _, s in pdta)


def test_sf2utils_reads_presets_zones_and_samples(caplog):
    zones = plan_zones(CELLS)
    samples = make_samples()
    data = sf2_bytes(zones, samples, name="My Test Instrument Name", release_s=0.3, comment="hello")
    sf2 = parse(data, caplog)

    assert (sf2.info.sound_engine, sf2.info.bank_name) == ("EMU8000", "My Test Instrument Name")
    assert (sf2.info.tool, sf2.info.comments) == ("instrumentgen", "hello")

    preset, eop = sf2.presets
    assert (preset.name, preset.bank, preset.preset, eop.name) == ("My Test Instrument ", 0, 0, "EOP")
    (preset_zone,) = preset.bags
    instrument = preset_zone.instrument
    assert instrument is sf2.instruments[0] and sf2.instruments[1].name == "EOI"
    assert instrument.name == "My Test Instrument "
    assert len(instrument.bags) == len(zones)

    raw_igen = sf2.raw.pdta["Igen"]
    for bag, zone in zip(instrument.bags, zones, strict=True):
        assert bag.key_range == [zone.lokey, zone.hikey]
        assert bag.velocity_range == [zone.lovel, zone.hivel]
        assert bag.base_note == zone.keycenter
        assert bag.sample_loop is False
        assert bag.volume_envelope_release == pytest.approx(0.3, rel=1e-3)
        gens = raw_igen[bag.gen_idx:bag.gen_idx + bag.gen_size]
        assert [gens[0].oper, gens[1].oper, gens[-1].oper] == [GEN_KEY_RANGE, GEN_VEL_RANGE, GEN_SAMPLE_ID]
        assert gens[0].amount == zone.lokey | zone.hikey << 8  # rangesType: low byte first
        assert gens[1].amount == zone.lovel | zone.hivel << 8

        sample = bag.sample
        pcm = samples[zone.cell].pcm
        padded = np.pad(pcm, (0, max(0, 48 - pcm.size)))
        assert sample.name == f"My Test In-{zone.pitch}-{zone.velocity}"
        assert (sample.sample_rate, sample.original_pitch, sample.pitch_correction) == (SR, zone.pitch, 0)
        assert sample.is_mono and sample.sample_width == 2
        assert sample.duration == padded.size
        assert np.array_equal(np.frombuffer(sample.raw_sample_data, "<i2"), padded)
        assert 8 <= sample.start_loop and sample.end_loop <= sample.duration - 8
        assert sample.loop_duration >= 32
        gap = data[sf2.raw.smpl_offset + 2 * sample.end:][:2 * SAMPLE_GAP]
        assert gap == bytes(2 * SAMPLE_GAP), "46 zero points must follow every sample"

    assert sf2.samples[-1].name == "EOS" and len(sf2.samples) == len(CELLS) + 1
    starts = sorted(s.start for s in sf2.samples[:-1])
    ends = sorted(s.end for s in sf2.samples[:-1])
    assert all(b - a >= SAMPLE_GAP for a, b in zip(ends, starts[1:], strict=False))


def test_pcm16_round_trip_through_a_wav(tmp_path):
    pcm = np.array([-32768, -1, 0, 1, 12345, 32767], dtype=np.int16)
    sf.write(tmp_path / "a.wav", pcm, SR, subtype="PCM_16")
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float64")
    assert np.array_equal(to_pcm16(audio), pcm)
    assert np.array_equal(to_pcm16(np.array([1.5, -1.5])), [32767, -32768])


def test_write_is_atomic_and_complete(tmp_path):
    zones = plan_zones(CELLS)
    path = write_sf2(tmp_path / "x.sf2", zones, make_samples(), name="x")
    assert path.read_bytes() == sf2_bytes(zones, make_samples(), name="x")
    assert [p.name for p in tmp_path.iterdir()] == ["x.sf2"]


def test_timecents():
    assert timecents(1.0) == 0
    assert timecents(0.3) == round(1200 * np.log2(0.3)) == -2084
    with pytest.raises(ValueError, match="> 0"):
        timecents(0)


def test_bad_arguments():
    zones = plan_zones(CELLS)
    with pytest.raises(KeyError, match=r"\(40, 25\)"):
        sf2_bytes(zones, {}, name="x")
    with pytest.raises(ValueError, match="int16"):
        Sf2Sample(np.zeros(100), SR)
    with pytest.raises(ValueError, match="sample rate"):
        Sf2Sample(np.zeros(100, np.int16), 0)
    with pytest.raises(ValueError, match="at least one zone"):
        sf2_bytes([], {}, name="x")
