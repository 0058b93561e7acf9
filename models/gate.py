"""The promotion gate: absolute bars, then the champion on the same folds. Pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field

from alphaline.config import GateParams


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)

    def as_tags(self) -> dict[str, str]:
        return {
            "gate.decision": "promote" if self.promote else "reject",
            "gate.reasons": "; ".join(self.reasons),
        }


def decide(challenger: dict[str, float], champion: dict[str, float] | None,
           bars: GateParams) -> GateDecision:
    """``challenger``/``champion``: out-of-sample metrics on identical folds."""
    reasons, ok = [], True
    dsr = challenger["deflated_sharpe"]
    if dsr >= bars.min_deflated_sharpe:
        reasons.append(f"DSR {dsr:.3f} ≥ {bars.min_deflated_sharpe} "
                       f"over {int(challenger['n_trials'])} trials")
    else:
        ok = False
        reasons.append(f"DSR {dsr:.3f} < {bars.min_deflated_sharpe} "
                       f"over {int(challenger['n_trials'])} trials")
    ric = challenger["rank_ic"]
    if ric > bars.min_rank_ic:
        reasons.append(f"rank IC {ric:.4f} > {bars.min_rank_ic}")
    else:
        ok = False
        reasons.append(f"rank IC {ric:.4f} ≤ {bars.min_rank_ic}")
    if champion is None:
        reasons.append("no current champion")
    else:
        need = champion["rank_ic"] + bars.min_improvement
        if ric >= need:
            reasons.append(f"rank IC {ric:.4f} ≥ champion's {champion['rank_ic']:.4f} "
                           f"+ {bars.min_improvement} on the same folds")
        else:
            ok = False
            reasons.append(f"rank IC {ric:.4f} < champion's {champion['rank_ic']:.4f} "
                           f"+ {bars.min_improvement} on the same folds")
    return GateDecision(promote=ok, reasons=reasons)
