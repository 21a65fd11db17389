"""Each distribution knows its mean, and its samples agree with it (CLT tolerances)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from sim.model import streams
from sim.scenario.distributions import Z99, Distribution

ADAPTER = TypeAdapter(Distribution)
N = 200_000


def parse(raw: object, **context: object):
    return ADAPTER.validate_python(raw, context=context)


@pytest.mark.parametrize(
    "raw",
    [
        0.25,
        {"dist": "constant", "value": 0.3},
        {"dist": "exponential", "mean": 0.05},
        {"dist": "uniform", "low": 0.01, "high": 0.09},
        {"dist": "normal", "mean": 0.02, "sd": 0.02},
        {"dist": "normal", "mean": 1.0, "sd": 0.1},
        {"dist": "lognormal", "mean": 0.1, "cv": 1.5},
        {"dist": "lognormal", "median": 0.08, "p99": 0.4},
        {"dist": "lognormal", "median": 0.013, "sigma": 0.45},
        {"dist": "gamma", "mean": 0.06, "cv": 0.5},
        {"dist": "gamma", "mean": 0.06, "cv": 2.0},
        {"dist": "erlang", "mean": 0.2, "k": 4},
        {"dist": "empirical", "samples": [0.1, 0.2, 0.2, 0.7]},
        {
            "dist": "mixture",
            "parts": [
                {"weight": 98, "distribution": {"dist": "lognormal", "median": 0.013, "sigma": 0.45}},
                {"weight": 2, "distribution": {"dist": "lognormal", "median": 0.4, "sigma": 0.8}},
            ],
        },
        {
            "dist": "mixture",
            "parts": [{"weight": 1, "distribution": 0.5}, {"weight": 3, "distribution": 0.1}],
        },
    ],
)
def test_sample_mean_matches_the_known_mean(raw: object) -> None:
    dist = parse(raw)
    x = dist.sample(np.random.default_rng(3), N)
    assert (x >= 0).all()
    sd = x.std()
    tol = 5 * sd / math.sqrt(N) + 1e-12
    assert abs(x.mean() - dist.mean) < tol, f"{raw}: sample mean {x.mean()} vs {dist.mean}"


def test_lognormal_by_median_and_p99_hits_both() -> None:
    dist = parse({"dist": "lognormal", "median": 0.08, "p99": 0.4})
    x = dist.sample(np.random.default_rng(5), N)
    assert np.quantile(x, 0.5) == pytest.approx(0.08, rel=0.02)
    assert np.quantile(x, 0.99) == pytest.approx(0.4, rel=0.05)
    mu, sigma = dist.mu_sigma
    assert math.exp(mu + Z99 * sigma) == pytest.approx(0.4)


def test_lognormal_by_mean_and_cv() -> None:
    x = parse({"dist": "lognormal", "mean": 0.2, "cv": 0.5}).sample(np.random.default_rng(9), N)
    assert x.std() / x.mean() == pytest.approx(0.5, rel=0.03)


def test_gamma_cv() -> None:
    x = parse({"dist": "gamma", "mean": 0.06, "cv": 0.5}).sample(np.random.default_rng(2), N)
    assert x.std() / x.mean() == pytest.approx(0.5, rel=0.02)


def test_empirical_from_csv(tmp_path) -> None:
    (tmp_path / "lat.csv").write_text("latency\n0.1\n0.3\n")
    dist = parse({"dist": "empirical", "file": "lat.csv"}, base_dir=str(tmp_path))
    assert dist.mean == pytest.approx(0.2)
    assert set(dist.sample(np.random.default_rng(1), 100).tolist()) == {0.1, 0.3}
    # The resolved form carries the samples, so it stands on its own.
    assert dist.file is None and dist.samples == [0.1, 0.3]


def test_mixture_of_body_and_stalls_matches_both_quantiles() -> None:
    """The engine-overhead shape of the reference figures: p50 ~13 ms and p99 ~400 ms at once."""
    dist = parse(
        {
            "dist": "mixture",
            "parts": [
                {"weight": 0.98, "distribution": {"dist": "lognormal", "median": 0.013, "sigma": 0.45}},
                {"weight": 0.02, "distribution": {"dist": "lognormal", "median": 0.4, "sigma": 0.8}},
            ],
        }
    )
    x = dist.sample(np.random.default_rng(4), N)
    assert np.quantile(x, 0.5) == pytest.approx(0.0131, rel=0.03)
    assert 0.3 < np.quantile(x, 0.99) < 0.5


def test_constant_zero_is_zero() -> None:
    assert parse(0).is_zero
    assert not parse({"dist": "exponential", "mean": 1}).is_zero


def test_named_streams_are_reproducible_and_distinct() -> None:
    dist = parse({"dist": "exponential", "mean": 1.0})
    a = streams.draws(dist, 7, "work/x")
    b = streams.draws(dist, 7, "work/x")
    c = streams.draws(dist, 7, "work/y")
    xa = [a() for _ in range(5000)]
    assert xa == [b() for _ in range(5000)]
    assert xa != [c() for _ in range(5000)]
    assert all(type(v) is float for v in xa), "no numpy scalars may reach the clock"


@settings(max_examples=40, deadline=None)
@given(
    median=st.floats(1e-4, 10),
    ratio=st.floats(1.01, 50),
)
def test_lognormal_mean_is_above_median(median: float, ratio: float) -> None:
    dist = parse({"dist": "lognormal", "median": median, "p99": median * ratio})
    assert dist.mean > median


@pytest.mark.parametrize(("mu", "sd"), [(0.02, 0.02), (1.0, 0.1), (-1.0, 0.5), (-6.0, 1.0), (-8.0, 1.0)])
def test_normal_draws_follow_the_truncated_normal_exactly(mu: float, sd: float) -> None:
    """Draws come from the inverse CDF of the normal conditioned on X ≥ 0, so even a normal
    whose mass lies almost all below 0 is sampled at once (rejection sampling would loop)."""
    from scipy import stats

    dist = parse({"dist": "normal", "mean": mu, "sd": sd})
    x = dist.sample(np.random.default_rng(11), 20_000)
    assert (x >= 0).all() and np.isfinite(x).all()
    truncated = stats.truncnorm(-mu / sd, math.inf, loc=mu, scale=sd)
    assert stats.kstest(x, truncated.cdf).pvalue > 1e-3
    assert dist.mean == pytest.approx(truncated.mean(), rel=1e-9)


def test_normal_with_zero_sd_is_its_mean() -> None:
    dist = parse({"dist": "normal", "mean": 0.3, "sd": 0})
    assert dist.sample(np.random.default_rng(1), 5).tolist() == [0.3] * 5
    assert dist.mean == 0.3
