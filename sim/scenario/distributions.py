"""Latency distributions of the scenario language.

A distribution is written either as a bare number of seconds (a constant) or as a mapping with a
``dist`` tag. Every distribution knows its exact mean (tests and reports compare against it) and
draws vectorised samples from a ``numpy.random.Generator``; the model turns those batches into
plain Python floats so that no numpy scalar reaches the simulation clock.

All values are in seconds. Distributions that could produce negative values are truncated at 0
(normal) or are non-negative by construction.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationInfo,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    import numpy as np

Z99 = 2.3263478740408408
"""The 0.99 quantile of the standard normal: a lognormal's p99 is median * exp(Z99 * sigma)."""


class Spec(BaseModel):
    """What every distribution offers: its exact mean, whether it is always 0, and batches of draws."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    @property
    def is_zero(self) -> bool:
        """True when every draw is exactly 0, so the model can skip the delay altogether."""
        return False

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Constant(Spec):
    """Always the same value."""

    dist: Literal["constant"] = "constant"
    value: float = Field(ge=0, description="The value, in seconds.")

    @property
    def mean(self) -> float:
        return self.value

    @property
    def is_zero(self) -> bool:
        return self.value == 0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        return np.full(n, self.value)


class Exponential(Spec):
    """Memoryless service or delay with the given mean (rate = 1 / mean)."""

    dist: Literal["exponential"]
    mean_: PositiveFloat = Field(alias="mean", description="Mean, in seconds.")

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_, n)


class Uniform(Spec):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: float = Field(ge=0, description="Lower bound, in seconds.")
    high: float = Field(ge=0, description="Upper bound, in seconds.")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must not be less than low")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)


def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


class Normal(Spec):
    """Normal with ``mean`` and ``sd``, truncated at 0 (negative draws are redrawn).

    ``mean`` here is the mean of the untruncated normal; the property ``mean`` returns the exact
    mean of the truncated distribution, which is what the model actually draws.
    """

    dist: Literal["normal"]
    mu: float = Field(alias="mean", description="Mean before truncation, in seconds.")
    sd: float = Field(ge=0, description="Standard deviation before truncation, in seconds.")

    @model_validator(mode="after")
    def _has_mass(self) -> Normal:
        if self.sd == 0 and self.mu < 0:
            raise ValueError("mean must be at least 0 when sd is 0")
        if self.sd > 0 and self.mu / self.sd < -8:
            raise ValueError("mean is so far below 0 that almost every draw would be truncated")
        return self

    @property
    def mean(self) -> float:
        if self.sd == 0:
            return self.mu
        a = -self.mu / self.sd
        return self.mu + self.sd * _phi(a) / (1 - _cdf(a))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = rng.normal(self.mu, self.sd, n)
        bad = out < 0
        while bad.any():
            out[bad] = rng.normal(self.mu, self.sd, int(bad.sum()))
            bad = out < 0
        return out


class LogNormal(Spec):
    """Log-normal, given by exactly one of: ``mean`` and ``cv``; ``median`` and ``p99``;
    ``median`` and ``sigma`` (the standard deviation of the logarithm)."""

    dist: Literal["lognormal"]
    mean_: PositiveFloat | None = Field(None, alias="mean", description="Mean, in seconds.")
    cv: PositiveFloat | None = Field(None, description="Coefficient of variation (sd / mean).")
    median: PositiveFloat | None = Field(None, description="Median, in seconds.")
    p99: PositiveFloat | None = Field(None, description="99th percentile, in seconds.")
    sigma: PositiveFloat | None = Field(None, description="Standard deviation of ln(X).")

    @model_validator(mode="after")
    def _one_parametrisation(self) -> LogNormal:
        given = {k for k in ("mean_", "cv", "median", "p99", "sigma") if getattr(self, k) is not None}
        allowed = [{"mean_", "cv"}, {"median", "p99"}, {"median", "sigma"}]
        if given not in allowed:
            raise ValueError("give exactly one of: mean and cv; median and p99; median and sigma")
        if self.p99 is not None and self.median is not None and self.p99 <= self.median:
            raise ValueError("p99 must be greater than median")
        return self

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the underlying normal (mean and sd of ln X)."""
        if self.mean_ is not None and self.cv is not None:
            s2 = math.log1p(self.cv**2)
            return math.log(self.mean_) - s2 / 2, math.sqrt(s2)
        assert self.median is not None
        if self.sigma is not None:
            return math.log(self.median), self.sigma
        assert self.p99 is not None
        return math.log(self.median), math.log(self.p99 / self.median) / Z99

    @property
    def mean(self) -> float:
        mu, sigma = self.mu_sigma
        return math.exp(mu + sigma**2 / 2)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mu, sigma = self.mu_sigma
        return rng.lognormal(mu, sigma, n)


class Gamma(Spec):
    """Gamma with ``mean`` and ``cv``; with 1/cv² a whole number k it is Erlang-k."""

    dist: Literal["gamma"]
    mean_: PositiveFloat = Field(alias="mean", description="Mean, in seconds.")
    cv: PositiveFloat = Field(description="Coefficient of variation (sd / mean).")

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1 / self.cv**2
        return rng.gamma(shape, self.mean_ / shape, n)


class Erlang(Spec):
    """Erlang-k with the given mean: the sum of k exponential phases."""

    dist: Literal["erlang"]
    mean_: PositiveFloat = Field(alias="mean", description="Mean, in seconds.")
    k: int = Field(ge=1, description="Number of phases.")

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.k, self.mean_ / self.k, n)


class Empirical(Spec):
    """Resamples observed values: a ``samples`` list, or a CSV ``file`` of samples (one column,
    or the ``column`` named), relative to the scenario file. Draws are uniform over the samples."""

    dist: Literal["empirical"]
    samples: list[float] | None = Field(None, description="Observed values, in seconds.")
    file: str | None = Field(None, description="CSV file of observed values (seconds).")
    column: str | None = Field(None, description="Column of the CSV file to read.")

    @field_validator("samples")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("must not be empty")
            if min(v) < 0:
                raise ValueError("samples must not be negative")
        return v

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> Empirical:
        if (self.samples is None) == (self.file is None):
            raise ValueError("give exactly one of samples and file")
        if self.file is not None:
            base = (info.context or {}).get("base_dir", ".")
            values = _read_samples(Path(base) / self.file, self.column)
            # The resolved scenario carries the samples themselves, so it stands on its own.
            object.__setattr__(self, "samples", values)
            object.__setattr__(self, "file", None)
            object.__setattr__(self, "column", None)
        return self

    @property
    def mean(self) -> float:
        assert self.samples is not None
        return math.fsum(self.samples) / len(self.samples)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        return rng.choice(np.asarray(self.samples, dtype=float), n)


class MixturePart(BaseModel):
    """One part of a mixture: a distribution and its relative weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: PositiveFloat = Field(description="Relative weight (weights need not sum to 1).")
    distribution: Distribution = Field(description="The part's distribution.")


class Mixture(Spec):
    """Each draw comes from one of the ``parts``, chosen with probability proportional to its
    weight: e.g. a fast body with rare slow stalls, which no single lognormal reproduces."""

    dist: Literal["mixture"]
    parts: list[MixturePart] = Field(min_length=2, description="The parts and their weights.")

    @property
    def probabilities(self) -> list[float]:
        total = sum(p.weight for p in self.parts)
        return [p.weight / total for p in self.parts]

    @property
    def mean(self) -> float:
        return sum(p * part.distribution.mean for p, part in zip(self.probabilities, self.parts))

    @property
    def is_zero(self) -> bool:
        return all(part.distribution.is_zero for part in self.parts)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        which = rng.choice(len(self.parts), size=n, p=np.array(self.probabilities))
        out = np.empty(n)
        for i, part in enumerate(self.parts):
            chosen = which == i
            out[chosen] = part.distribution.sample(rng, int(chosen.sum()))
        return out


def _read_samples(path: Path, column: str | None) -> list[float]:
    import pandas as pd

    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if column is None:
        if frame.shape[1] != 1:
            raise ValueError(f"{path} has {frame.shape[1]} columns: name one with column")
        column = str(frame.columns[0])
    if column not in frame.columns:
        raise ValueError(f"{path} has no column {column!r}")
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any() or values.empty:
        raise ValueError(f"column {column!r} of {path} must hold numbers only")
    if (values < 0).any():
        raise ValueError(f"column {column!r} of {path} has negative values")
    return [float(v) for v in values]


def _number_is_constant(value: Any) -> Any:
    """A bare number means a constant; ``dist`` may be omitted for ``{value: x}``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return {"dist": "constant", "value": value}
    return value


Distribution = Annotated[
    Union[Constant, Exponential, Uniform, Normal, LogNormal, Gamma, Erlang, Empirical, Mixture],
    Field(discriminator="dist"),
    BeforeValidator(_number_is_constant),
]
"""A latency distribution: a bare number of seconds, or a mapping tagged with ``dist``."""

DIST_NAMES = (
    "constant",
    "exponential",
    "uniform",
    "normal",
    "lognormal",
    "gamma",
    "erlang",
    "empirical",
    "mixture",
)
MixturePart.model_rebuild()
Mixture.model_rebuild()
ZERO = Constant(value=0.0)
