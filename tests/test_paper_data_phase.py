"""The paper profile's data phase through Snakemake, with NSynth served from 127.0.0.1.

The real archives cannot be downloaded here, so a loopback HTTP server serves NSynth-format
archives of 4 s synthetic notes under the real file names; everything else is the paper
profile as shipped (download with resume and checksum, safe extraction, prune, 44.1 kHz).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml
from nsynth_fixtures import ServerConfig, closed_port_url, serve

from instrumentgen.data.store import open_store
from instrumentgen.synth import synthesize_dataset
from instrumentgen.workspace import make_workspace, snakemake

pytestmark = pytest.mark.e2e
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, bytes]:
    """``/nsynth-{split}.jsonwav.tar.gz`` → archive bytes, as on the NSynth server."""
    root = tmp_path_factory.mktemp("nsynth-src")
    synthesize_dataset(root, seed=7, instruments_per_family={s: 1 for s in SPLITS}, note_seconds=4.0,
                       pitch_step=30, velocities=(100,), cell_dropout=0.0, workers=2, progress=False)
    files = {}
    for split in SPLITS:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(root / f"nsynth-{split}", arcname=f"nsynth-{split}")
        files[f"/nsynth-{split}.jsonwav.tar.gz"] = buf.getvalue()
    return files


def paper_workspace(tmp_path: Path, base_url: str) -> Path:
    ws = make_workspace(tmp_path / "ws")
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["nsynth"].update(base_url=base_url, retries=1, timeout_s=10)
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    return ws


def test_paper_data_phase_downloads_prunes_and_resamples(tmp_path: Path, archives):
    config = ServerConfig(files=archives, drop_after=50_000)  # the first GET is cut short
    with serve(config) as url:
        ws = paper_workspace(tmp_path, url)
        snakemake(ws, "--cores", "2", "data")
    ranged = [h for h in config.gets() if "Range" in h]
    assert [h["Range"] for h in ranged] == ["bytes=50000-"]  # resumed where the connection dropped
    for split in SPLITS:
        archive = ws / "data/downloads" / f"nsynth-{split}.jsonwav.tar.gz"
        assert archive.read_bytes() == archives[f"/{archive.name}"]
        assert archive.with_name(archive.name + ".sha256").is_file()
        store = open_store(ws / "data/paper/resampled" / split)
        assert store.sample_rate == 44100 and store.num_frames == 176400
        assert store.index["pitch"].between(21, 108).all()
    assert (ws / "results/paper/data/coverage.png").is_file()


def test_paper_data_phase_uses_preplaced_archives_offline(tmp_path: Path, archives):
    ws = paper_workspace(tmp_path, closed_port_url())
    (ws / "data/downloads").mkdir(parents=True)
    for name, data in archives.items():
        (ws / "data/downloads" / name.lstrip("/")).write_bytes(data)
    snakemake(ws, "--cores", "2", "data")
    assert len(open_store(ws / "data/paper/resampled/test")) > 0


def test_paper_data_phase_without_network_says_what_to_do(tmp_path: Path):
    url = closed_port_url()
    ws = paper_workspace(tmp_path, url)
    proc = snakemake(ws, "--cores", "1", "data", check=False)
    assert proc.returncode != 0
    log = next((ws / "logs/paper").glob("nsynth_*.log")).read_text()
    assert url in log and "data/downloads/nsynth-" in log and "tiny" in log
    assert not (ws / "data/paper/manifest").exists()
    assert not list((ws / "data/paper").rglob("examples.json"))
