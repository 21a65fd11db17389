"""Latency distributions of the scenario language.

A distribution is written either as a bare number of seconds (a constant) or as a mapping with a
``dist`` tag. Every distribution knows its exact mean (tests and reports compare against it) and
draws vectorised samples from a ``numpy.random.Generator``; the model turns those batches into
plain Python floats so that no numpy scalar reaches the simulation clock.

All values are in seconds. Distributions that could produce negative values are truncated at 0
(normal) or are non-negative by construction.

Every parameter is finite and bounded (:mod:`sim.scenario.limits`): times at most
``MAX_SECONDS``, coefficients of variation and lognormal sigmas in ranges where draws and means
neither overflow nor underflow to nonsense. A distribution that validates therefore always draws
finite, non-negative numbers in bounded time.
"""

from __future__ import annotations

import io
import math
import os
import stat
import sys
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

from sim.scenario.limits import MAX_COUNT, MAX_CV, MAX_FILE_BYTES, MAX_SECONDS, MAX_SIGMA, MIN_CV

if TYPE_CHECKING:
    import numpy as np

Z99 = 2.3263478740408408
"""The 0.99 quantile of the standard normal: a lognormal's p99 is median * exp(Z99 * sigma)."""


class Spec(BaseModel):
    """What every distribution offers: its exact mean, whether it is always 0, and batches of draws."""

    # No inf or nan anywhere: pydantic would otherwise turn "inf", "Infinity" or 1e999 into floats.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
    value: float = Field(ge=0, le=MAX_SECONDS, description="The value, in seconds (at most 1e9).")

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
    mean_: PositiveFloat = Field(alias="mean", le=MAX_SECONDS, description="Mean, in seconds (at most 1e9).")

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_, n)


class Uniform(Spec):
    """Uniform between ``low`` and ``high``."""

    dist: Literal["uniform"]
    low: float = Field(ge=0, le=MAX_SECONDS, description="Lower bound, in seconds (at most 1e9).")
    high: float = Field(ge=0, le=MAX_SECONDS, description="Upper bound, in seconds (at most 1e9).")

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


def _upper_tail(x: float) -> float:
    """P(Z > x) for a standard normal Z, accurate far into the tail (no 1 − Φ cancellation)."""
    return 0.5 * math.erfc(x / math.sqrt(2))


class Normal(Spec):
    """Normal with ``mean`` and ``sd``, truncated at 0: the normal conditioned on being
    non-negative (as if negative draws were redrawn).

    ``mean`` here is the mean of the untruncated normal; the property ``mean`` returns the exact
    mean of the truncated distribution, which is what the model actually draws. Draws come from
    the inverse CDF of the truncated distribution, so they take the same time however much of
    the normal lies below 0 (rejection sampling would loop ~10^9 times at mean −6 sd).
    """

    dist: Literal["normal"]
    mu: float = Field(
        alias="mean", le=MAX_SECONDS, description="Mean before truncation, in seconds (at least −8 sd)."
    )
    sd: float = Field(
        ge=0, le=MAX_SECONDS, description="Standard deviation before truncation, in seconds (at most 1e9)."
    )

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
        return self.mu + self.sd * _phi(a) / _upper_tail(a)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        if self.sd == 0:
            return np.full(n, float(self.mu))
        from scipy.special import ndtr, ndtri

        # Z ≥ a, with a the truncation point in sd units, is -Φ⁻¹(V) for V uniform on
        # (0, Φ(-a)]: exact in the upper tail, where Φ(-a) is small but representable.
        a = -self.mu / self.sd
        v = (1.0 - rng.random(n)) * ndtr(-a)
        z = -ndtri(v)
        return np.maximum(self.mu + self.sd * z, 0.0)


class LogNormal(Spec):
    """Log-normal, given by exactly one of: ``mean`` and ``cv``; ``median`` and ``p99``;
    ``median`` and ``sigma`` (the standard deviation of the logarithm).

    However given, sigma is at most 10 (p99 at most e^23 ≈ 10^10 times the median): beyond it
    the mean overflows and draws become infinite."""

    dist: Literal["lognormal"]
    mean_: PositiveFloat | None = Field(
        None, alias="mean", le=MAX_SECONDS, description="Mean, in seconds (at most 1e9)."
    )
    cv: PositiveFloat | None = Field(
        None, le=MAX_CV, description="Coefficient of variation (sd / mean), at most 100."
    )
    median: PositiveFloat | None = Field(
        None, le=MAX_SECONDS, description="Median, in seconds (at most 1e9)."
    )
    p99: PositiveFloat | None = Field(
        None, le=MAX_SECONDS, description="99th percentile, in seconds (at most 1e9)."
    )
    sigma: PositiveFloat | None = Field(
        None, le=MAX_SIGMA, description="Standard deviation of ln(X), at most 10."
    )

    @model_validator(mode="after")
    def _one_parametrisation(self) -> LogNormal:
        given = {k for k in ("mean_", "cv", "median", "p99", "sigma") if getattr(self, k) is not None}
        allowed = [{"mean_", "cv"}, {"median", "p99"}, {"median", "sigma"}]
        if given not in allowed:
            raise ValueError("give exactly one of: mean and cv; median and p99; median and sigma")
        if self.p99 is not None and self.median is not None:
            if self.p99 <= self.median:
                raise ValueError("p99 must be greater than median")
            # Logarithms apart: p99 / median itself may overflow for a tiny median.
            sigma = (math.log(self.p99) - math.log(self.median)) / Z99
            if sigma > MAX_SIGMA:
                raise ValueError(
                    f"p99 is too far above median: sigma would be {sigma:.3g}, at most {MAX_SIGMA:g} "
                    f"(p99 at most {math.exp(Z99 * MAX_SIGMA):.3g} × median)"
                )
        return self

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the underlying normal (mean and sd of ln X)."""
        if self.mean_ is not None and self.cv is not None:
            s2 = math.log1p(self.cv**2)  # cv ≤ 100: no overflow
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
    """Gamma with ``mean`` and ``cv``; with 1/cv² a whole number k it is Erlang-k.

    ``cv`` lies in [0.001, 100]: below, the shape 1/cv² is so large that the gamma is a constant
    (and 1/cv² overflows for cv near 1e-154); above, it is so small that draws underflow to 0."""

    dist: Literal["gamma"]
    mean_: PositiveFloat = Field(alias="mean", le=MAX_SECONDS, description="Mean, in seconds (at most 1e9).")
    cv: float = Field(
        ge=MIN_CV, le=MAX_CV, description="Coefficient of variation (sd / mean), from 0.001 to 100."
    )

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1 / self.cv**2
        return rng.gamma(shape, self.mean_ / shape, n)


class Erlang(Spec):
    """Erlang-k with the given mean: the sum of k exponential phases."""

    dist: Literal["erlang"]
    mean_: PositiveFloat = Field(alias="mean", le=MAX_SECONDS, description="Mean, in seconds (at most 1e9).")
    k: int = Field(ge=1, le=MAX_COUNT, description="Number of phases (at most 1e9).")

    @property
    def mean(self) -> float:
        return self.mean_

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.gamma(self.k, self.mean_ / self.k, n)


class Empirical(Spec):
    """Resamples observed values: a ``samples`` list, or a CSV ``file`` of samples (one column,
    or the ``column`` named), relative to the scenario file. Draws are uniform over the samples.

    The file must lie in the scenario's folder or below it (no absolute path, no ``..`` or
    symbolic link leading out), unless the validation context says ``allow_outside``: a scenario
    received from elsewhere must not make the simulator read, say, ``/etc/passwd``. It must be a
    regular file of at most 10 MB, and errors never quote its content."""

    dist: Literal["empirical"]
    samples: list[float] | None = Field(None, description="Observed values, in seconds (from 0 to 1e9).")
    file: str | None = Field(
        None,
        description="CSV file of observed values (seconds), relative to the scenario's folder and "
        "inside it (unless files outside are allowed); at most 10 MB.",
    )
    column: str | None = Field(None, description="Column of the CSV file to read.")

    @field_validator("samples")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("must not be empty")
            if min(v) < 0:
                raise ValueError("samples must not be negative")
            if max(v) > MAX_SECONDS:
                raise ValueError(f"samples must be at most {MAX_SECONDS:,} s")
        return v

    @field_validator("file")
    @classmethod
    def _inside(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None:
            context = info.context or {}
            _checked_path(Path(context.get("base_dir", ".")), name, bool(context.get("allow_outside")))
        return name

    @model_validator(mode="after")
    def _load(self, info: ValidationInfo) -> Empirical:
        if (self.samples is None) == (self.file is None):
            raise ValueError("give exactly one of samples and file")
        if self.file is not None:
            context = info.context or {}
            base = Path(context.get("base_dir", "."))
            path = _checked_path(base, self.file, bool(context.get("allow_outside")))
            values = _read_samples(path, self.file, self.column)
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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weight: PositiveFloat = Field(description="Relative weight (weights need not sum to 1).")
    distribution: Distribution = Field(description="The part's distribution.")


class Mixture(Spec):
    """Each draw comes from one of the ``parts``, chosen with probability proportional to its
    weight: e.g. a fast body with rare slow stalls, which no single lognormal reproduces."""

    dist: Literal["mixture"]
    parts: list[MixturePart] = Field(min_length=2, description="The parts and their weights.")

    @property
    def probabilities(self) -> list[float]:
        """Weights scaled to sum to 1. Weights whose sum overflows (1e308 + 1e308) or is subnormal
        are scaled by the largest first, so that the probabilities stay exact enough for numpy."""
        weights = [p.weight for p in self.parts]
        total = sum(weights)
        if not sys.float_info.min <= total < math.inf:
            top = max(weights)
            weights = [w / top for w in weights]
            total = sum(weights)
        return [w / total for w in weights]

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


def _checked_path(base: Path, name: str, allow_outside: bool) -> Path:
    """The path of an empirical distribution's ``file``: relative to ``base`` (the scenario's
    folder), and unless ``allow_outside``, inside it once symbolic links are resolved."""
    if not name.strip() or "\x00" in name:
        raise ValueError(f"{name!r} is not a file name")
    given_path = Path(name)
    where = "relative to the scenario's folder, inside it (or allow files outside with --allow-outside)"
    if not allow_outside and given_path.is_absolute():
        raise ValueError(f"{name!r} is an absolute path; give the file {where}")
    path = base / given_path
    if not allow_outside:
        try:
            inside = path.resolve().is_relative_to(base.resolve())
        except (OSError, RuntimeError, ValueError):  # a symbolic link loop, a name too long
            inside = False
        if not inside:
            raise ValueError(f"{name!r} leads outside the scenario's folder; give the file {where}")
    return path


def _read_samples(path: Path, name: str, column: str | None) -> list[float]:
    """The numbers of a CSV file's column. Errors name the file but never quote its content
    (a header or a parser's message would): the file may be anything."""
    import pandas as pd

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except OSError as exc:
        raise ValueError(f"cannot open {name}: {exc.strerror or 'error'}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{name} is a folder, not a CSV file")
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{name} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ValueError(f"{name} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror or 'error'}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name} is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except Exception:
        raise ValueError(f"cannot read {name} as a CSV of numbers") from None
    if column is None:
        if frame.shape[1] != 1:
            raise ValueError(f"{name} has {frame.shape[1]} columns: name one with column")
        which = "its column"
        values = frame.iloc[:, 0]
    elif column not in frame.columns:
        raise ValueError(f"{name} has no column {column!r}")
    else:
        which = f"column {column!r}"
        values = frame[column]
    try:
        numbers = pd.to_numeric(values, errors="coerce")
        ok = not numbers.empty and not numbers.isna().any()
        result = [float(v) for v in numbers] if ok else []
    except (TypeError, ValueError):  # e.g. a column name given twice: not one column of numbers
        ok = False
    if not ok:
        raise ValueError(f"{which} of {name} must hold numbers only")
    if not all(math.isfinite(v) for v in result):
        raise ValueError(f"{which} of {name} must hold finite numbers only")
    if min(result) < 0:
        raise ValueError(f"{which} of {name} has negative values")
    if max(result) > MAX_SECONDS:
        raise ValueError(f"{which} of {name} has values above {MAX_SECONDS:,} s")
    return result


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
