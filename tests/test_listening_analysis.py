"""Table 4 from webMUSHRA result files: synthetic results in webMUSHRA's exact CSV format (the columns its
``service/write.php`` writes) with known answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from instrumentgen.listening.stats import holm, mean_ci, pairwise_wilcoxon, screen_assessors
from instrumentgen.listening.table4 import NO_RATINGS, KitSpec, analyse, main
from instrumentgen.listening.webmushra import ResultsError, read_lss, read_mushra

VARIANTS = ["baseline", "random", "fixed", "magnet"]
QUESTIONS = ["playability", "timbral consistency"]
MUSHRA_HEADER = ["session_test_id", "participant", "session_uuid", "trial_id", "rating_stimulus",
                 "rating_score", "rating_time", "rating_comment"]
LSS_HEADER = ["session_test_id", "participant", "trial_id", "stimuli_rating1", "stimuli_rating2", "stimuli",
              "rating_time"]
TRIALS = [f"s2i_{i}" for i in range(7)]
PROMPTS = [f"t2i_{i}" for i in range(3)]
MEANS = {"baseline": 60, "random": 70, "fixed": 50, "magnet": 30, "anchor": 10}


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def mushra_rows() -> list[list]:
    """p1, p2, p4 are careful; p3 rates the hidden reference below 90 in 2 of 7 trials (29% > 15%: excluded);
    p2 does so once (14% <= 15%: kept)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in ("p1", "p2", "p3", "p4"):
        for t, trial in enumerate(TRIALS):
            reference = 100
            if (p == "p3" and t < 2) or (p == "p2" and t == 0):
                reference = 70
            rows.append(["instrumentgen", p, f"uuid-{p}", trial, "reference", reference, 12.5, ""])
            for stimulus, mean in MEANS.items():
                score = int(np.clip(mean + rng.integers(-15, 16) + (40 if p == "p3" else 0), 0, 100))
                rows.append(["instrumentgen", p, f"uuid-{p}", trial, stimulus, score, 3.0, ""])
    return rows


def lss_rows() -> list[list]:
    rng = np.random.default_rng(1)
    rows = []
    for p in ("p1", "p2", "p5"):
        for trial in PROMPTS:
            for i, v in enumerate(VARIANTS):
                play, tc = rng.integers(1, 6), rng.integers(1, 6)
                if p == "p5" and i == 0:
                    tc = "NA"  # not rated: left out
                rows.append(["instrumentgen", p, trial, play, tc, v, 4.0])
    return rows


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    path = tmp_path / "kit.json"
    path.write_text(json.dumps({
        "mushra": {"conditions": VARIANTS, "anchor": "anchor", "trials": TRIALS},
        "mos": {"conditions": VARIANTS, "questions": QUESTIONS, "scale": [1, 5], "trials": PROMPTS},
    }))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "instrumentgen"
    folder.mkdir(parents=True)
    write_csv(folder / "mushra.csv", MUSHRA_HEADER, mushra_rows())
    write_csv(folder / "lss.csv", LSS_HEADER, lss_rows())
    return folder


def test_post_screening_excludes_the_participant_who_misses_the_reference(results: Path):
    ratings = read_mushra(results / "mushra.csv", {*VARIANTS, "anchor", "reference"}, set(TRIALS))
    kept, table = screen_assessors(ratings)
    assert kept == ["p1", "p2", "p4"]
    share = table.set_index("participant")["reference_below_90"]
    assert share["p3"] == pytest.approx(2 / 7) and share["p2"] == pytest.approx(1 / 7) and share["p1"] == 0


def test_means_and_confidence_intervals_match_scipy(results: Path, kit: Path):
    analysis = analyse(KitSpec.read(kit), results)
    raw = pd.read_csv(results / "mushra.csv")
    kept = raw[raw["participant"] != "p3"]
    for variant in (*VARIANTS, "anchor", "reference"):
        scores = kept.loc[kept["rating_stimulus"] == variant, "rating_score"].to_numpy(float)
        got = analysis["mushra"]["scores"][variant]
        assert got["n"] == len(scores) == 21 and got["mean"] == pytest.approx(scores.mean())
        if scores.std() > 0:
            expected = stats.ttest_1samp(scores, 0.0).confidence_interval(0.95)
            assert (got["low"], got["high"]) == pytest.approx((expected.low, expected.high))
    assert analysis["mushra"]["excluded"] == ["p3"]
    lss = pd.read_csv(results / "lss.csv", keep_default_na=False)
    rated = (lss["stimuli"] == "baseline") & (lss["stimuli_rating2"] != "NA")
    tc = lss.loc[rated, "stimuli_rating2"].astype(float)
    got = analysis["mos"]["questions"]["timbral consistency"]["scores"]["baseline"]
    assert got["n"] == len(tc) == 6 and got["mean"] == pytest.approx(tc.mean())


def test_pairwise_wilcoxon_is_paired_by_participant_and_trial_and_holm_corrected(results: Path):
    ratings = read_mushra(results / "mushra.csv", {*VARIANTS, "anchor", "reference"}, set(TRIALS))
    pairs = pairwise_wilcoxon(ratings, VARIANTS)
    assert len(pairs) == 6 and set(pairs["n"]) == {28}
    assert (pairs["n_nonzero"] <= pairs["n"]).all()
    wide = ratings.pivot_table(index=["participant", "trial"], columns="stimulus", values="score")
    row = pairs[(pairs["a"] == "random") & (pairs["b"] == "magnet")].iloc[0]
    assert row["p"] == pytest.approx(stats.wilcoxon(wide["random"], wide["magnet"]).pvalue)
    assert row["median_difference"] == pytest.approx(float(np.median(wide["random"] - wide["magnet"])))
    assert list(pairs["p_holm"]) == pytest.approx(holm(list(pairs["p"])))
    assert (pairs["p_holm"] >= pairs["p"]).all()


def test_holm_known_answer():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_mean_ci_edge_cases():
    assert mean_ci(np.array([])).n == 0
    one = mean_ci(np.array([50.0]))
    assert one.mean == 50 and np.isnan(one.low)


def test_cli_writes_table4_and_metrics(results: Path, kit: Path, tmp_path: Path):
    out = tmp_path / "out"
    main(["--kit", str(kit), "--results", str(results), "--out-dir", str(out)])
    md = (out / "table4.md").read_text()
    assert "± " in md and "BS.1534-3" in md and NO_RATINGS not in md
    table = pd.read_csv(out / "table4.csv", index_col=0)
    assert list(table.index) == [*VARIANTS, "anchor", "reference"]
    assert table.loc["reference", table.columns[1]] == "—"  # no MOS for the hidden reference
    metrics = json.loads((out / "table4.json").read_text())
    assert metrics["mushra"]["excluded"] == ["p3"] and "ratings" not in metrics["mushra"]
    assert len(pd.read_csv(out / "table4_pairs.csv")) == 6 * 3
    assert (out / "table4.png").stat().st_size > 5000
    assert (out / "table4.tex").read_text().startswith("\\begin")


def test_without_results_the_table_says_no_ratings_yet(kit: Path, tmp_path: Path):
    for results in ([], ["--results", str(tmp_path / "never-made")]):
        out = tmp_path / f"out{len(results)}"
        main(["--kit", str(kit), *results, "--out-dir", str(out)])
        md = (out / "table4.md").read_text()
        assert NO_RATINGS in md and ("No results folder at" in md if results else "No webMUSHRA" in md)
        table = pd.read_csv(out / "table4.csv", index_col=0)
        assert table.loc["baseline"].tolist() == [NO_RATINGS] * 3
        assert table.loc["anchor"].tolist() == [NO_RATINGS, "—", "—"]  # MOS pages play no anchor
        metrics = json.loads((out / "table4.json").read_text())
        assert metrics["mushra"] == metrics["mos"] == NO_RATINGS
        assert (out / "table4.png").is_file()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: [r[:4] + r[5:] for r in rows], r"mushra.csv: missing column\(s\) rating_stimulus"),
        (lambda rows: rows[:5] + [rows[5][:4] + ["wavenet"] + rows[5][5:]] + rows[6:],
         r"mushra.csv line 7: rating_stimulus 'wavenet' is not a stimulus of the kit"),
        (lambda rows: rows[:2] + [rows[2][:5] + ["loud"] + rows[2][6:]] + rows[3:],
         r"mushra.csv line 4: rating_score 'loud' is not a number in 0..100"),
        (lambda rows: rows + [rows[0]], r"a second rating of the same participant 'p1'"),
        (lambda rows: [r for r in rows if not (r[1] == "p4" and r[4] == "reference")],
         r"participant 'p4' never rated the hidden reference"),
    ],
    ids=["missing-column", "unknown-stimulus", "bad-score", "duplicate", "no-reference"],
)
def test_bad_mushra_files_name_the_file_and_row(tmp_path: Path, edit, message: str):
    header = MUSHRA_HEADER[:4] + MUSHRA_HEADER[5:] if "missing" in message else MUSHRA_HEADER
    path = write_csv(tmp_path / "mushra.csv", header, edit(mushra_rows()))
    with pytest.raises(ResultsError, match=message):
        read_mushra(path, {*VARIANTS, "anchor", "reference"}, set(TRIALS))


def test_bad_lss_files_name_the_file_and_row(tmp_path: Path):
    rows = lss_rows()
    bad = rows[:3] + [rows[3][:3] + [7] + rows[3][4:]] + rows[4:]
    path = write_csv(tmp_path / "lss.csv", LSS_HEADER, bad)
    with pytest.raises(ResultsError, match=r"lss.csv line 5: stimuli_rating1 '7' is not an integer in 1..5"):
        read_lss(path, set(VARIANTS), QUESTIONS, set(PROMPTS))
    silent = [r[:3] + ["NA", "NA"] + r[5:] if r[1] == "p5" else r for r in rows]
    path = write_csv(tmp_path / "lss.csv", LSS_HEADER, silent)
    with pytest.raises(ResultsError, match=r"participant 'p5' has no rating"):
        read_lss(path, set(VARIANTS), QUESTIONS, set(PROMPTS))
    path = write_csv(tmp_path / "lss.csv", [c for c in LSS_HEADER if c != "stimuli_rating2"],
                     [r[:4] + r[5:] for r in rows])
    with pytest.raises(ResultsError, match=r"missing column\(s\) stimuli_rating2: the kit asks 2 question"):
        read_lss(path, set(VARIANTS), QUESTIONS, set(PROMPTS))


def test_errors_name_the_line_where_a_record_starts_even_after_a_multiline_comment(tmp_path: Path):
    rows = mushra_rows()
    rows[0][7] = "first line\nsecond line"  # webMUSHRA quotes a comment with a newline
    rows[3][4] = "wavenet"
    path = write_csv(tmp_path / "mushra.csv", MUSHRA_HEADER, rows)
    with pytest.raises(ResultsError, match=r"mushra.csv line 6: rating_stimulus 'wavenet'"):
        read_mushra(path, {*VARIANTS, "anchor", "reference"}, set(TRIALS))
