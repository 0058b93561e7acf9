"""GARCH(1,1) for many symbols in one call, against ``arch`` fitting each alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphaline.features import garch, risk


def simulate(omega: float, alpha: float, beta: float, n: int, rng) -> np.ndarray:
    r, var = np.zeros(n), omega / max(1 - alpha - beta, 0.05)
    for t in range(n):
        r[t] = np.sqrt(var) * rng.standard_normal()
        var = omega + alpha * r[t] ** 2 + beta * var
    return r


TRUE = [(0.02, 0.08, 0.90), (0.05, 0.05, 0.93), (0.1, 0.1, 0.8), (0.3, 0.15, 0.6),
        (0.01, 0.03, 0.96), (0.2, 0.0, 0.0)]


@pytest.fixture(scope="module")
def returns():
    rng = np.random.default_rng(5)
    r = np.array([simulate(*p, 800, rng) for p in TRUE])
    r[2, 100:110] = np.nan  # a halt: skipped, as arch is given the finite returns only
    r[3, 50] = np.inf
    return r


def test_one_call_fits_every_symbol_as_arch_does(returns):
    from arch import arch_model

    params, loglik = garch.fit(returns)
    for i, r in enumerate(returns):
        res = arch_model(r[np.isfinite(r)], mean="Zero", vol="GARCH", p=1, q=1,
                         rescale=False).fit(disp="off", show_warning=False)
        # the same maximum: the likelihood agrees to 1e-6, the parameters where it is sharp
        assert loglik[i] == pytest.approx(res.loglikelihood, rel=1e-6, abs=1e-6)
        assert loglik[i] >= res.loglikelihood - 1e-6
        np.testing.assert_allclose(params[i], res.params.to_numpy(), rtol=0, atol=1e-3,
                                   err_msg=str(TRUE[i]))


def test_warm_start_reaches_the_same_fit(returns):
    cold, ll_cold = garch.fit(returns)
    warm, ll_warm = garch.fit(returns, start=cold * 1.02)
    np.testing.assert_allclose(ll_warm, ll_cold, rtol=1e-8)
    np.testing.assert_allclose(warm, cold, atol=1e-3)


def test_forecast_matches_the_per_symbol_arch_filter(returns):
    """The forecast with the batch fits against the same schedule with ``arch`` fits."""
    close = pd.DataFrame(100 * np.exp(np.nancumsum(np.where(np.isfinite(returns), returns,
                                                                  0), axis=1).T / 100))
    got = risk.garch_forecast(close, refit_every=200).to_numpy()
    values = 100 * np.log(close / close.shift(1)).to_numpy()
    for j in range(values.shape[1]):
        col, params, var = values[:, j], None, np.nan
        want = np.full(len(col), np.nan)
        for t in range(len(col)):
            if t % 200 == 0 and t + 1 >= risk.GARCH_MIN_OBS:
                seen = col[max(0, t - 999): t + 1]
                fitted = risk._fit(seen, params)
                if fitted is not None:
                    params, var = fitted, float(np.nanvar(seen))
                    for x in seen[np.isfinite(seen)]:
                        var = params[0] + params[1] * x * x + params[2] * var
                    want[t] = np.sqrt(var) / 100
                    continue
            if params is not None and np.isfinite(col[t]):
                var = params[0] + params[1] * col[t] ** 2 + params[2] * var
                want[t] = np.sqrt(var) / 100
        np.testing.assert_array_equal(np.isnan(got[:, j]), np.isnan(want), err_msg=str(j))
        np.testing.assert_allclose(got[:, j], want, rtol=2e-3, equal_nan=True,
                                   err_msg=str(TRUE[j]))
