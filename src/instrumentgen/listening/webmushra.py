"""webMUSHRA's result files, read and checked (the format its ``service/write.php`` writes).

A test's results folder (``results/<testId>/`` of a webMUSHRA installation) holds one CSV per page type,
one row per rating, appended session after session:

- ``mushra.csv``: ``session_test_id``, one column per questionnaire item of the finish page (e.g.
  ``participant``), ``session_uuid``, ``trial_id`` (the page id), ``rating_stimulus`` (a key of the
  page's ``stimuli``, or ``reference`` for the hidden reference), ``rating_score`` (0–100),
  ``rating_time``, ``rating_comment``;
- ``lss.csv`` (``likert_single_stimulus`` pages): ``session_test_id``, the questionnaire columns,
  ``trial_id``, ``stimuli_rating`` (one scale) or ``stimuli_rating1`` … ``stimuli_ratingN`` (N scales;
  the ``value`` of the chosen response, ``NA`` when not rated), ``stimuli``, ``rating_time``.

No session id is written to ``lss.csv``: the project's kit asks each participant for a code on the
finish page (questionnaire item ``participant``), which both files then carry.

Errors name the file and the line (1 = the header) where the first bad record starts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

MUSHRA_FILE = "mushra.csv"
LSS_FILE = "lss.csv"
MUSHRA_COLUMNS = ("session_test_id", "session_uuid", "trial_id", "rating_stimulus", "rating_score")
LSS_COLUMNS = ("session_test_id", "trial_id", "stimuli")
PARTICIPANT = "participant"  # the finish page's questionnaire item naming the participant
NOT_RATED = "NA"
REFERENCE = "reference"  # webMUSHRA's name of a MUSHRA page's hidden reference


class ResultsError(ValueError):
    """A webMUSHRA result file that cannot be analysed; the message names the file and row."""


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: not a webMUSHRA CSV ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ResultsError(
            f"{path}: missing column(s) {', '.join(missing)} (webMUSHRA writes "
            f"{', '.join(required)}); columns found: {', '.join(frame.columns)}"
        )
    frame.insert(0, "line", _record_lines(path, len(frame)))
    return frame


def _record_lines(path: Path, n: int) -> np.ndarray:
    """The file line each of the ``n`` data records starts on (a quoted comment may span lines)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader, None)
        starts, previous = [], reader.line_num
        for _ in reader:
            starts.append(previous + 1)
            previous = reader.line_num
    if len(starts) != n:
        raise ResultsError(f"{path}: {len(starts)} CSV records, but {n} rows parsed")
    return np.asarray(starts)


def _bad_row(path: Path, frame: pd.DataFrame, mask, column: str, what: str) -> None:
    """Raise on the first row of ``mask``: its ``column`` value and ``what`` is wrong with it."""
    mask = np.asarray(mask)
    if mask.any():
        row = frame[mask].iloc[0]
        raise ResultsError(
            f"{path} line {row['line']}: {column} {row[column]!r} {what} ({int(mask.sum())} such rows)"
        )


def read_mushra(path: Path, stimuli: set[str], trials: set[str] | None = None) -> pd.DataFrame:
    """Ratings of ``mushra.csv``: columns ``line``, ``participant`` (the questionnaire's code, else the
    session id), ``session``, ``trial``, ``stimulus``, ``score`` (float, 0–100). ``stimuli``: the names
    the kit uses (``reference`` included); ``trials``: its page ids (``None``: any)."""
    frame = _read(path, MUSHRA_COLUMNS)
    _check_names(path, frame, "rating_stimulus", stimuli, trials)
    score = pd.to_numeric(frame["rating_score"], errors="coerce")
    bad = (score.isna() | (score < 0) | (score > 100)).to_numpy()
    _bad_row(path, frame, bad, "rating_score", "is not a number in 0..100")
    out = pd.DataFrame(
        {
            "line": frame["line"],
            "participant": _participants(frame, "session_uuid"),
            "session": frame["session_uuid"],
            "trial": frame["trial_id"],
            "stimulus": frame["rating_stimulus"],
            "score": score.astype(float),
        }
    )
    _no_duplicates(path, out, ["participant", "trial", "stimulus"])
    rated_reference = out.loc[out["stimulus"] == REFERENCE, "participant"].unique()
    _bad_row(path, out, ~out["participant"].isin(rated_reference), "participant",
             "never rated the hidden reference: BS.1534-3 post-screening cannot judge them")
    return out


def read_lss(path: Path, stimuli: set[str], questions: list[str], trials: set[str] | None = None,
             scale: tuple[int, int] = (1, 5)) -> pd.DataFrame:
    """Ratings of ``lss.csv`` in long form: columns ``line``, ``participant``, ``trial``, ``stimulus``,
    ``question`` (one of ``questions``, in the order of the page's scales), ``score`` (int in ``scale``;
    unrated answers are left out). The file must carry the ``participant`` column (see module doc)."""
    frame = _read(path, (*LSS_COLUMNS, PARTICIPANT))
    rating_columns = ["stimuli_rating"]
    if len(questions) > 1:
        rating_columns = [f"stimuli_rating{i + 1}" for i in range(len(questions))]
    missing = [c for c in rating_columns if c not in frame.columns]
    if missing:
        raise ResultsError(
            f"{path}: missing column(s) {', '.join(missing)}: the kit asks {len(questions)} question(s) "
            f"({', '.join(questions)}) per stimulus"
        )
    _check_names(path, frame, "stimuli", stimuli, trials)
    empty = (frame[PARTICIPANT].str.strip() == "").to_numpy()
    _bad_row(path, frame, empty, PARTICIPANT, "is empty: every rating needs the participant's code")
    rows = []
    for question, column in zip(questions, rating_columns, strict=True):
        values = frame[column].str.strip()
        rated = values != NOT_RATED
        score = pd.to_numeric(values.where(rated), errors="coerce")
        bad = (rated & (score.isna() | (score % 1 != 0) | (score < scale[0]) | (score > scale[1]))).to_numpy()
        _bad_row(path, frame, bad, column, f"is not an integer in {scale[0]}..{scale[1]} (or {NOT_RATED})")
        rows.append(
            pd.DataFrame(
                {
                    "line": frame["line"],
                    "participant": frame[PARTICIPANT].str.strip(),
                    "trial": frame["trial_id"],
                    "stimulus": frame["stimuli"],
                    "question": question,
                    "score": score,
                }
            )[rated.to_numpy()]
        )
    out = pd.concat(rows, ignore_index=True)
    out["score"] = out["score"].astype(int)
    silent = ~frame[PARTICIPANT].str.strip().isin(out["participant"])
    _bad_row(path, frame, silent, PARTICIPANT, "has no rating (every answer NA)")
    _no_duplicates(path, out, ["participant", "trial", "stimulus", "question"])
    return out


def _check_names(path: Path, frame: pd.DataFrame, column: str, stimuli: set[str], trials: set[str] | None):
    """Every row's stimulus (``column``) among the kit's ``stimuli``, its trial among ``trials``."""
    kit = ", ".join(sorted(stimuli))
    _bad_row(path, frame, ~frame[column].isin(stimuli), column, f"is not a stimulus of the kit ({kit})")
    if trials is not None:
        _bad_row(path, frame, ~frame["trial_id"].isin(trials), "trial_id", "is not a page of the kit")


def _participants(frame: pd.DataFrame, fallback: str) -> pd.Series:
    """The participant code where the questionnaire asked for one, else the session column."""
    if PARTICIPANT in frame.columns:
        named = frame[PARTICIPANT].str.strip()
        return named.where(named != "", frame[fallback])
    return frame[fallback]


def _no_duplicates(path: Path, ratings: pd.DataFrame, keys: list[str]) -> None:
    dup = ratings.duplicated(keys, keep="first").to_numpy()
    if dup.any():
        row = ratings[dup].iloc[0]
        raise ResultsError(
            f"{path} line {row['line']}: a second rating of the same "
            + ", ".join(f"{k} {row[k]!r}" for k in keys)
            + " (a session submitted twice?)"
        )
