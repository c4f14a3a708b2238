"""Special functions for the exact samplers: the normal and beta CDFs, their logs and inverses.

torch has the normal CDF and its log, but not the inverse of the log-CDF nor the incomplete beta
function; those come from `scipy.special`, on float64 numpy views of CPU tensors. Each function
takes and returns float64 tensors `[n]`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DTYPE", "LOG_TINY", "betainc", "betaincc", "betainccinv", "betaincinv", "betaln", "gauss_legendre_log_integral",
    "log1mexp", "ndtri_exp",
]

DTYPE = torch.float64
#: log of the smallest positive float64 (a subnormal): a probability below it cannot be represented.
LOG_TINY = math.log(math.ulp(0.0))
# Nodes and weights of 32-point Gauss–Legendre quadrature on [-1, 1] (exact for degree 63).
_NODES, _WEIGHTS = (torch.from_numpy(v) for v in np.polynomial.legendre.leggauss(32))
_LOG_WEIGHTS = _WEIGHTS.log()


def _scipy(name: str, *args: float | Tensor) -> Tensor:
    # scipy is imported on first use: it costs a fifth of a second, and most specs never need it.
    from scipy import special

    arrays = [a.detach().to("cpu", DTYPE).numpy() if isinstance(a, Tensor) else a for a in args]
    return torch.from_numpy(np.asarray(getattr(special, name)(*arrays), dtype=np.float64))


def ndtri_exp(log_p: Tensor) -> Tensor:
    """z with log Φ(z) = `log_p`: the normal quantile of a probability given by its log (exact in far tails)."""
    return _scipy("ndtri_exp", log_p).to(log_p.device)


def betainc(a: float, b: float, x: Tensor) -> Tensor:
    """The regularised incomplete beta function I_x(a, b): beta(a, b)'s CDF."""
    return _scipy("betainc", a, b, x).to(x.device)


def betaincc(a: float, b: float, x: Tensor) -> Tensor:
    """1 − I_x(a, b), computed without cancellation (beta(a, b)'s survival function)."""
    return _scipy("betaincc", a, b, x).to(x.device)


def betaincinv(a: float, b: float, p: Tensor) -> Tensor:
    """x with I_x(a, b) = `p`."""
    return _scipy("betaincinv", a, b, p).to(p.device)


def betainccinv(a: float, b: float, q: Tensor) -> Tensor:
    """x with 1 − I_x(a, b) = `q`."""
    return _scipy("betainccinv", a, b, q).to(q.device)


def log1mexp(x: Tensor) -> Tensor:
    """log(1 − exp(x)) for x <= 0, accurate at both ends (Mächler's rule)."""
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def gauss_legendre_log_integral(log_density: object, low: Tensor, high: Tensor) -> Tensor:
    """log ∫ exp(log_density(t)) dt over [low, high] `[n]`, by 32-point Gauss–Legendre in log space.

    Exact to rounding for the nearly flat, analytic densities it is used on (a truncation much
    narrower than the distribution's scale), and free of underflow however small the mass.
    """
    half = (high - low).unsqueeze(-1) / 2  # [n, 1]
    nodes = low.unsqueeze(-1) + half * (1 + _NODES.to(low.device))  # [n, 32]
    log_values = log_density(nodes.flatten()).reshape(nodes.shape)  # type: ignore[operator]
    return torch.logsumexp(log_values + _LOG_WEIGHTS.to(low.device), -1) + half.squeeze(-1).log()


def betaln(a: float, b: float) -> float:
    """log B(a, b), without the cancellation of lgamma(a) + lgamma(b) − lgamma(a + b) at large shapes."""
    from scipy import special

    return float(special.betaln(a, b))
