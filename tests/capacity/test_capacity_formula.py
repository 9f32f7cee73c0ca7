"""The IC formula and the corpus averages: units (bits, bytes, FLOPs) and the two averagings."""

from __future__ import annotations

import math

import pytest

from ipw.science.capacity import SampleScore, information_capacity, summarize

# two samples of unequal length, so the averagings differ
A = SampleScore(tokens_scored=10, text_bytes=40, nll_bits=20.0)
B = SampleScore(tokens_scored=30, text_bytes=60, nll_bits=30.0, truncated=True)


def test_ic_is_bits_per_token_over_log2_flops():
    # 32 bits/token of text, 3 bits/token NLL, b = -27 -> 2 bits/token; F = 2**28 FLOPs/token
    assert information_capacity(32.0, 3.0, 2.0**28, -27.0) == pytest.approx(2 / 28)


def test_ic_numerator_and_denominator_scale_as_units_say():
    base = information_capacity(30.0, 5.0, 2.0**20, -20.0)
    # one more bit/token of text size adds exactly 1/log2(F)
    assert information_capacity(31.0, 5.0, 2.0**20, -20.0) - base == pytest.approx(1 / 20)
    # squaring F (FLOPs) doubles log2(F) and halves IC
    assert information_capacity(30.0, 5.0, 2.0**40, -20.0) == pytest.approx(base / 2)


def test_ic_rejects_flops_without_positive_log():
    with pytest.raises(ValueError, match="FLOPs per token"):
        information_capacity(30.0, 5.0, 1.0, -20.0)


def test_official_averaging_nll_over_positions_text_size_over_samples():
    s = summarize([A, B], "official")
    assert s.nll_bits_per_token == pytest.approx((20 + 30) / (10 + 30))
    # per-sample 8*40/10 = 32 and 8*60/30 = 16 bits/token, mean of the two
    assert s.text_size_bits_per_token == pytest.approx((32 + 16) / 2)


def test_token_averaging_pools_text_size_over_positions():
    s = summarize([A, B], "tokens")
    assert s.text_size_bits_per_token == pytest.approx(8 * (40 + 60) / (10 + 30))
    assert s.nll_bits_per_token == summarize([A, B], "official").nll_bits_per_token


def test_bytes_per_token_and_bits_per_byte_are_consistent():
    s = summarize([A, B])
    assert (s.samples, s.tokens_scored, s.text_bytes, s.truncated_samples) == (2, 40, 100, 1)
    assert s.bytes_per_token == pytest.approx(100 / 40)
    assert s.bits_per_byte == pytest.approx(50 / 100)
    # bits/byte x bytes/token = bits/token
    assert s.bits_per_byte * s.bytes_per_token == pytest.approx(s.nll_bits_per_token)


def test_one_sample_averagings_agree():
    one = [A]
    assert summarize(one, "official") == summarize(one, "tokens")


def test_unknown_averaging_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="averaging"):
        summarize([A], "samples")
    with pytest.raises(ValueError, match="no samples"):
        summarize([])


def test_zero_bytes_gives_nan_bits_per_byte():
    assert math.isnan(summarize([SampleScore(2, 0, 1.0)]).bits_per_byte)
