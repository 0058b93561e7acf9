"""Transaction costs: commission + half-spread + square-root market impact."""

from __future__ import annotations

import math
from dataclasses import dataclass

from alphaline.config import BrokerParams


@dataclass(frozen=True)
class CostModel:
    commission_per_share: float
    half_spread_bps: float
    impact_coefficient: float

    @classmethod
    def from_params(cls, p: BrokerParams) -> CostModel:
        return cls(p.commission_per_share, p.half_spread_bps, p.impact_coefficient)

    def per_turnover(self, typical_price: float) -> float:
        """Cost of trading one dollar of notional at ``typical_price``, impact aside."""
        return self.half_spread_bps * 1e-4 + self.commission_per_share / typical_price

    def commission(self, quantity: float) -> float:
        return self.commission_per_share * abs(quantity)

    def slippage(self, quantity: float, price: float, daily_vol: float, adv: float) -> float:
        """Dollar cost of crossing half the spread and of impact ``k * sigma * sqrt(q / ADV)``."""
        notional = abs(quantity) * price
        spread = self.half_spread_bps * 1e-4 * notional
        if adv <= 0 or not math.isfinite(adv) or not math.isfinite(daily_vol):
            return spread
        impact = self.impact_coefficient * daily_vol * math.sqrt(abs(quantity) / adv) * notional
        return spread + impact
