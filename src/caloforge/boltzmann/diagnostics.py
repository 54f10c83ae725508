"""Markov-chain diagnostics: integrated autocorrelation time and effective sample size.

The integrated autocorrelation time tau = 1 + 2 sum_{t>=1} rho(t) says how many steps of a chain
are worth one independent sample: N correlated steps carry the information of N / tau
independent ones. It is estimated from the autocorrelation function (via FFT), averaged over the
chains, with Sokal's automatic window: the sum stops at the first lag M with M >= c * tau(M)
(c = 5), which balances the bias of truncating against the noise of long lags. Deviations are
taken from the mean over ALL chains, so chains stuck in different regions show up as slowly
decaying correlations rather than being hidden by per-chain centring.
"""

from __future__ import annotations

import numpy as np
import torch

from caloforge.boltzmann.errors import BoltzmannError


def _as_matrix(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise BoltzmannError(f"expected a (T,) or (T, chains) series, got shape {x.shape}")
    if x.shape[0] < 4:
        raise BoltzmannError(f"a series needs at least 4 steps, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise BoltzmannError("the series contains NaN or infinite values")
    return x


def autocorrelation_function(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """(T,) normalised autocorrelation rho(t) of a (T,) or (T, chains) series, averaged over
    chains; rho(0) = 1."""
    x = _as_matrix(x)
    t = x.shape[0]
    dev = x - x.mean()
    size = 1 << int(np.ceil(np.log2(2 * t)))
    spectrum = np.fft.rfft(dev, n=size, axis=0)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:t].mean(1)
    acov /= np.arange(t, 0, -1)  # unbiased per lag
    if acov[0] <= 0:
        raise BoltzmannError("the series is constant, so its autocorrelation time is undefined")
    return acov / acov[0]


def autocorrelation_time(x: np.ndarray | torch.Tensor, *, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time (in steps) of a (T,) or (T, chains) series.

    Raises :class:`BoltzmannError` for a constant series (nothing to measure). With T steps the
    estimate is trustworthy when T >~ 50 tau; it is capped at T (a series shorter than its
    correlation carries about one sample).
    """
    rho = autocorrelation_function(x)
    taus = 2.0 * np.cumsum(rho) - 1.0
    lags = np.arange(len(rho))
    window = np.nonzero(lags >= window_factor * taus)[0]
    m = int(window[0]) if window.size else len(rho) - 1
    return float(np.clip(taus[m], 1.0 / len(rho), len(rho)))


def effective_sample_size(x: np.ndarray | torch.Tensor) -> float:
    """T * chains / tau: the number of independent samples the series is worth."""
    matrix = _as_matrix(x)
    return matrix.size / autocorrelation_time(matrix)


def burn_in_sweeps(trace: np.ndarray | torch.Tensor, *, n_sigma: float = 2.0) -> int:
    """First step at which the chain-mean of a (T, chains) trace of fresh chains reaches the
    mean of the trace's second half within ``n_sigma`` standard errors (the measured burn-in).

    Returns T if it never does (the trace is too short to equilibrate).
    """
    x = _as_matrix(trace)
    t, chains = x.shape
    tail = x[t // 2 :]
    target = tail.mean()
    se = tail.std() / np.sqrt(chains)
    means = x.mean(1)
    close = np.nonzero(np.abs(means - target) <= n_sigma * max(se, 1e-12))[0]
    return int(close[0]) + 1 if close.size else t
