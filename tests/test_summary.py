"""The dataset summary table and coverage figure."""

from __future__ import annotations

from pathlib import Path

from instrumentgen.data.manifest import write_table
from instrumentgen.data.prune import prune_split
from instrumentgen.data.summary import main, summarize


def test_summary_counts_and_figure(small_split: Path, tmp_path: Path):
    table, _ = prune_split(small_split, note_seconds=0.25, progress=False)
    write_table(table, tmp_path / "train.parquet")
    summary = summarize({"train": table.to_pandas()})
    guitar = summary.set_index("family").loc["guitar"]
    assert guitar[["notes", "instruments", "pitch_min", "pitch_max"]].tolist() == [6, 1, 21, 108]
    main(["--manifests", str(tmp_path / "train.parquet"), "--table", str(tmp_path / "s.csv"),
          "--figure", str(tmp_path / "c.png")])
    assert (tmp_path / "s.csv").read_text().startswith("split,family,notes")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
