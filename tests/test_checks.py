"""The shared checks of user-given values (:mod:`instrumentgen.checks`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instrumentgen.checks import (
    int_at_least,
    int_in_range,
    is_int,
    is_number,
    json_object,
    known_keys,
    number_at_least,
    number_in_range,
    positive_int,
)


def test_is_int_rejects_bools_and_floats_and_accepts_numpy_ints():
    assert is_int(3) and is_int(0) and is_int(-2)
    assert is_int(np.int64(3)) and is_int(np.int16(-1)) and is_int(np.uint8(7))
    assert not is_int(True) and not is_int(False) and not is_int(np.bool_(True))
    assert not is_int(3.0) and not is_int("3") and not is_int(None) and not is_int(np.float32(3))


def test_is_number_rejects_bools_and_accepts_numpy_numbers():
    assert is_number(3) and is_number(0.5) and is_number(np.float32(0.5)) and is_number(np.int32(2))
    assert is_number(math.inf)
    assert not is_number(True) and not is_number(np.bool_(False))
    assert not is_number("0.5") and not is_number(None) and not is_number(1j)


def test_int_at_least():
    assert int_at_least("train.warmup_steps", 0, 0) == 0
    value = int_at_least("x", np.int64(5), 1)
    assert value == 5 and type(value) is int
    for bad in (-1, True, False, 1.0, "1", None):
        with pytest.raises(ValueError, match=rf"^train.warmup_steps must be an int >= 0, got {bad!r}$"):
            int_at_least("train.warmup_steps", bad, 0)
    with pytest.raises(ValueError, match=r"^sample_rate must be an int >= 8000, got 4000$"):
        int_at_least("sample_rate", 4000, 8000)


def test_positive_int():
    assert positive_int("n", 1) == 1
    value = positive_int("n", np.int32(7))
    assert value == 7 and type(value) is int
    for bad in (0, -3, True, 2.0, "2", None, np.float64(2.0)):
        with pytest.raises(ValueError, match=rf"^lm dim must be a positive int, got {bad!r}$"):
            positive_int("lm dim", bad)


def test_int_in_range():
    assert int_in_range("pitch", 21, 21, 108) == 21 and int_in_range("pitch", 108, 21, 108) == 108
    assert type(int_in_range("pitch", np.int64(60), 21, 108)) is int
    for bad in (20, 109, True, 60.0):
        with pytest.raises(ValueError, match=rf"^pitch must be an int in 21..108, got {bad!r}$"):
            int_in_range("pitch", bad, 21, 108)


def test_number_at_least():
    assert number_at_least("train.weight_decay", 0, 0.0) == 0.0
    value = number_at_least("lr", np.float32(0.5), 0.0, strict=True)
    assert value == 0.5 and type(value) is float
    zero = number_at_least("train.weight_decay", 0, 0.0)
    assert type(zero) is int  # a setting written as 0 keeps its JSON form (run fingerprints hash it)
    with pytest.raises(ValueError, match=r"^train.grad_clip must be > 0, got 0$"):
        number_at_least("train.grad_clip", 0, 0.0, strict=True)
    with pytest.raises(ValueError, match=r"^train.weight_decay must be >= 0, got -0.1$"):
        number_at_least("train.weight_decay", -0.1, 0.0)
    for bad in (True, math.nan, "1", None):
        with pytest.raises(ValueError, match=r"^cfg must be >= 1.5, got "):
            number_at_least("cfg", bad, 1.5)


def test_number_in_range_closed_and_half_open():
    assert number_in_range("p", 0, 0.0, 1.0) == 0.0 and number_in_range("p", 1.0, 0.0, 1.0) == 1.0
    assert number_in_range("p", np.float64(0.25), 0.0, 1.0) == 0.25
    assert number_in_range("dropout", 0.999, 0.0, 1.0, high_inclusive=False) == 0.999
    with pytest.raises(ValueError, match=r"^lm dropout must be in \[0, 1\), got 1.0$"):
        number_in_range("lm dropout", 1.0, 0.0, 1.0, high_inclusive=False)
    for bad in (-0.1, 1.5, True, math.nan, "0.5", None):
        with pytest.raises(ValueError, match=r"^top_p must be in \[0, 1\], got "):
            number_in_range("top_p", bad, 0.0, 1.0)


def test_known_keys_names_the_unknown_and_the_known():
    known_keys("train settings", {"steps": 1}, ["steps", "lr"])
    known_keys("train settings", {}, ["steps"])
    with pytest.raises(ValueError, match=r"^unknown train settings: lrr, stepz; known: lr, steps$"):
        known_keys("train settings", {"stepz": 1, "lrr": 2, "lr": 3}, ("steps", "lr"))


def test_json_object():
    assert json_object('{"a": 1}', "--overrides") == {"a": 1}
    with pytest.raises(ValueError, match=r"^--overrides is not valid JSON: "):
        json_object("{a: 1}", "--overrides")
    with pytest.raises(ValueError, match=r"^--overrides must be a JSON object, got '\[1, 2\]'$"):
        json_object("[1, 2]", "--overrides")


def test_settings_keep_numpy_numbers_as_plain_python_numbers():
    """Settings read from NumPy (a sweep, a Parquet row) are stored as Python numbers, so the run's
    fingerprint (JSON) and the model file's content digest can hold them."""
    import json

    from instrumentgen.generate.sampling import SamplingSettings
    from instrumentgen.testing import tiny_config
    from instrumentgen.train.settings import TrainSettings

    train = TrainSettings(lr=np.float32(0.5), weight_decay=np.float64(0.1), cfg_dropout=np.float32(0.25))
    assert (type(train.lr), type(train.weight_decay), type(train.cfg_dropout)) == (float, float, float)
    assert json.loads(json.dumps(train.to_dict()))["lr"] == 0.5
    config = tiny_config(dropout=np.float32(0.125))
    assert type(config.dropout) is float and json.dumps(config.to_dict())
    sampling = SamplingSettings(temperature=np.float32(0.5), top_p=np.float64(0.5), cfg_coef=np.int64(2))
    assert (type(sampling.temperature), type(sampling.top_p), type(sampling.cfg_coef)) == (float, float, int)
