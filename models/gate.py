"""The promotion gate: absolute limits, no suspected leak, then the champion on the same CPCV
paths. Pure logic: figures in, decision and reasons out."""

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
           limits: GateParams, leaks: list[dict] | None = None) -> GateDecision:
    """``challenger``: ``deflated_sharpe`` and ``n_trials`` (walk-forward, every trial of
    the studies), ``rank_ic`` (mean over the CPCV paths) and, when a champion was scored on
    the same paths, ``paths_won``/``n_paths``. ``champion``: its ``rank_ic`` on those paths.
    ``leaks``: the feature-validation report's suspected leaks; any one refuses."""
    reasons, ok = [], True
    dsr = challenger["deflated_sharpe"]
    trials = int(challenger["n_trials"])
    if dsr >= limits.min_deflated_sharpe:
        reasons.append(f"DSR {dsr:.3f} ≥ {limits.min_deflated_sharpe} over {trials} trials")
    else:
        ok = False
        reasons.append(f"DSR {dsr:.3f} < {limits.min_deflated_sharpe} over {trials} trials")
    ric = challenger["rank_ic"]
    if ric > limits.min_rank_ic:
        reasons.append(f"rank IC {ric:.4f} > {limits.min_rank_ic}")
    else:
        ok = False
        reasons.append(f"rank IC {ric:.4f} ≤ {limits.min_rank_ic}")
    for leak in leaks or []:
        ok = False
        reasons.append(f"suspected leak in {leak['feature']}: {leak['rule']}")
    if champion is None:
        reasons.append("no current champion")
    else:
        need = champion["rank_ic"] + limits.min_improvement
        won = (f" (better on {int(challenger['paths_won'])} of {int(challenger['n_paths'])} "
               f"paths)") if "paths_won" in challenger else ""
        if ric >= need:
            reasons.append(f"rank IC {ric:.4f} ≥ champion's {champion['rank_ic']:.4f} "
                           f"+ {limits.min_improvement} on the same paths{won}")
        else:
            ok = False
            reasons.append(f"rank IC {ric:.4f} < champion's {champion['rank_ic']:.4f} "
                           f"+ {limits.min_improvement} on the same paths{won}")
    return GateDecision(promote=ok, reasons=reasons)
