"""DACCodec over a small randomly initialised ``dac.DAC`` saved in the dac checkpoint format, and
fetch_dac_weights against a loopback HTTP server (no network)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from nsynth_fixtures import ServerConfig, closed_port_url, serve

from instrumentgen.codec.dac_codec import DACCodec, DACWeightsError, fetch_dac_weights
from instrumentgen.codec.loading import load_codec
from instrumentgen.download import checksum_path, sha256_file

dac = pytest.importorskip("dac")

SR = 16000
HOP = 2 * 4 * 5 * 8
FAST = {"retries": 0, "timeout": 5, "backoff": 0, "progress": False}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Keep the CPU work of these tests on one thread (the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's weight_norm deprecation, inside dac
        warnings.simplefilter("ignore", UserWarning)
        yield
    torch.set_num_threads(before)


def small_dac(n_codebooks: int = 4, seed: int = 0) -> dac.DAC:
    """A 0.4M-parameter DAC of the real class (hop 320 at 16 kHz)."""
    torch.manual_seed(seed)
    return dac.DAC(encoder_dim=8, encoder_rates=[2, 4, 5, 8], decoder_dim=16, decoder_rates=[8, 5, 4, 2],
                   n_codebooks=n_codebooks, codebook_size=1024, sample_rate=SR)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small DAC saved like the official weights: ``BaseModel.save(package=False)`` (state dict and
    constructor kwargs)."""
    path = tmp_path_factory.mktemp("dac") / "weights.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small_dac(n_codebooks=6).save(str(path), package=False)
    return path


@pytest.fixture
def fresh_weights(weights: Path, tmp_path: Path) -> Path:
    """A copy of :func:`weights` without a checksum record."""
    path = tmp_path / "weights.pth"
    path.write_bytes(weights.read_bytes())
    return path


def test_load_records_checksum_and_matches_model(fresh_weights: Path) -> None:
    assert not checksum_path(fresh_weights).exists()
    codec = DACCodec.load(fresh_weights, n_codebooks=4)
    assert checksum_path(fresh_weights).read_text().split()[0] == sha256_file(fresh_weights)
    assert (codec.sample_rate, codec.hop_length, codec.n_codebooks, codec.codebook_size) == (SR, HOP, 4, 1024)
    assert codec.frame_rate == pytest.approx(SR / HOP)
    assert not codec.model.training
    reference = small_dac(n_codebooks=6)
    for (name, p), q in zip(codec.model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_encode_decode_shapes_dtypes_and_frames(fresh_weights: Path) -> None:
    codec = DACCodec.load(fresh_weights, n_codebooks=4)
    for t in (1, HOP - 1, HOP, HOP + 1, 4000, SR):
        x = 0.1 * torch.randn(2, 1, t, generator=torch.Generator().manual_seed(t))
        codes = codec.encode(x)
        assert codes.dtype == torch.int64
        assert codes.shape == (2, 4, codec.num_frames(t)), t
        assert int(codes.min()) >= 0 and int(codes.max()) < 1024
        # the frame count is the model's own: encoder output of the padded input
        with torch.inference_mode():
            z = codec.model.encoder(codec.model.preprocess(x, SR))
        assert z.shape[-1] == codec.num_frames(t)
        audio = codec.decode(codes)
        assert audio.dtype == torch.float32
        assert audio.shape == (2, 1, codec.num_frames(t) * HOP)
        assert torch.isfinite(audio).all()


def test_first_codebooks_are_kept(fresh_weights: Path) -> None:
    x = 0.1 * torch.randn(1, 1, 3 * HOP, generator=torch.Generator().manual_seed(1))
    full = DACCodec.load(fresh_weights, n_codebooks=6).encode(x)
    two = DACCodec.load(fresh_weights, n_codebooks=2).encode(x)
    assert full.shape[1] == 6 and two.shape[1] == 2
    assert torch.equal(two, full[:, :2])
    with pytest.raises(ValueError, match="n_codebooks must be in 1..6"):
        DACCodec.load(fresh_weights, n_codebooks=7)


def test_decode_matches_the_dac_api(fresh_weights: Path) -> None:
    codec = DACCodec.load(fresh_weights, n_codebooks=3)
    codes = codec.encode(0.1 * torch.randn(1, 1, 2 * HOP, generator=torch.Generator().manual_seed(2)))
    with torch.inference_mode():
        z_q, _, _ = codec.model.quantizer.from_codes(codes)
        expected = codec.model.decode(z_q)
    out = codec.decode(codes)
    n = min(out.shape[-1], expected.shape[-1])
    assert torch.allclose(out[..., :n], expected[..., :n])


def test_bad_audio_and_codes_are_rejected(fresh_weights: Path) -> None:
    codec = DACCodec.load(fresh_weights)
    with pytest.raises(ValueError, match=r"\[B, 1, T"):
        codec.encode(torch.zeros(1, HOP))
    with pytest.raises(ValueError, match="NaN or inf"):
        codec.encode(torch.full((1, 1, HOP), float("nan")))
    with pytest.raises(ValueError, match="outside"):
        codec.decode(torch.full((1, 4, 2), 1024))
    with pytest.raises(ValueError, match=r"\[B, 4, F"):
        codec.decode(torch.zeros(1, 3, 2, dtype=torch.int64))


def test_tampered_weights_are_never_unpickled(fresh_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    DACCodec.load(fresh_weights)  # records the checksum
    data = bytearray(fresh_weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    fresh_weights.write_bytes(bytes(data))

    def must_not_load(*args: object, **kwargs: object) -> None:
        pytest.fail("dac.DAC.load was called on a file whose checksum does not match")

    monkeypatch.setattr(dac.DAC, "load", must_not_load)
    with pytest.raises(DACWeightsError, match="SHA-256 mismatch") as err:
        DACCodec.load(fresh_weights)
    assert str(fresh_weights) in str(err.value)


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(DACWeightsError, match="not found"):
        DACCodec.load(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(DACWeightsError, match="junk.pth: not a loadable dac.DAC checkpoint"):
        DACCodec.load(junk)
    # a checkpoint whose state dict does not fit the architecture its kwargs describe
    other = tmp_path / "other.pth"
    state = {"state_dict": {"encoder.block.0.bias": torch.zeros(3)},
             "metadata": {"kwargs": {"encoder_dim": 8, "encoder_rates": [2, 4, 5, 8], "decoder_dim": 16,
                                     "decoder_rates": [8, 5, 4, 2], "n_codebooks": 4, "sample_rate": SR}}}
    torch.save(state, other)
    with pytest.raises(DACWeightsError, match="other.pth: not a loadable dac.DAC checkpoint"):
        DACCodec.load(other)


def test_load_codec_dispatches_on_suffix(fresh_weights: Path, tmp_path: Path) -> None:
    assert isinstance(load_codec(fresh_weights, n_codebooks=2), DACCodec)
    with pytest.raises(ValueError, match="unknown codec file type"):
        load_codec(tmp_path / "codec.bin")


def test_fetch_from_loopback_server_then_load(weights: Path, tmp_path: Path) -> None:
    cfg = ServerConfig(files={"/0.0.1/weights.pth": weights.read_bytes()})
    cache = tmp_path / "cache"
    with serve(cfg) as base:
        url = base + "/0.0.1/weights.pth"
        path = fetch_dac_weights(cache, url, **FAST)
        assert path == cache / "weights.pth"
        assert path.read_bytes() == weights.read_bytes()
        assert checksum_path(path).read_text().split()[0] == sha256_file(weights)
        assert fetch_dac_weights(cache, url, **FAST) == path  # cached: no second download
        assert len(cfg.gets()) == 1
    codec = DACCodec.load(path, n_codebooks=4)
    assert codec.encode(torch.zeros(1, 1, HOP)).shape == (1, 4, 1)


def test_fetch_verifies_a_cached_file(weights: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "weights.pth").write_bytes(weights.read_bytes())
    url = closed_port_url() + "/0.0.1/weights.pth"
    path = fetch_dac_weights(cache, url, **FAST)  # present: no network needed, checksum recorded
    assert checksum_path(path).exists()
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(DACWeightsError, match="SHA-256 mismatch"):
        fetch_dac_weights(cache, url, **FAST)


def test_fetch_without_network_names_url_and_destination(tmp_path: Path) -> None:
    url = closed_port_url() + "/0.0.1/weights.pth"
    with pytest.raises(DACWeightsError) as err:
        fetch_dac_weights(tmp_path / "cache", url, **FAST)
    assert url in str(err.value)
    assert str(tmp_path / "cache" / "weights.pth") in str(err.value)
    assert not (tmp_path / "cache" / "weights.pth").exists()


def test_fetch_http_error_names_url(tmp_path: Path) -> None:
    with serve(ServerConfig(files={})) as base:
        url = base + "/0.0.1/weights.pth"
        with pytest.raises(DACWeightsError, match="404") as err:
            fetch_dac_weights(tmp_path, url, **FAST)
    assert url in str(err.value)
