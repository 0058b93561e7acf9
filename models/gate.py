"""The promotion gate: absolute limits, no suspected leak, a lift over the baselines, then the
champion on the same CPCV paths, all on after-cost figures. Pure logic: figures in, decision
and reasons out."""

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


def decide(challenger: dict, champion: dict[str, float] | None, limits: GateParams,
           leaks: list[dict] | None = None, baselines: dict[str, float] | None = None
           ) -> GateDecision:
    """``challenger``: ``deflated_sharpe`` (after costs), ``n_trials`` and
    ``trial_sharpe_variance`` (the recipe family's trial ledger), ``rank_ic`` and
    ``sharpe_net`` (annualized, after costs, on the CPCV paths) and, against a champion,
    ``paths_won``/``n_paths``. ``champion``: its ``rank_ic``, ``sharpe_net`` and the paired
    bootstrap's ``edge_per_session`` and ``p_value``. ``baselines``: name → annualized
    after-cost Sharpe on the same sessions. ``leaks``: any one refuses."""
    reasons, ok = [], True
    dsr = challenger["deflated_sharpe"]
    trials = int(challenger["n_trials"])
    var = challenger.get("trial_sharpe_variance")
    source = challenger.get("dsr_source", "after costs")
    spread = f", trial Sharpe variance {var:.2e}" if var is not None else ""
    if dsr >= limits.min_deflated_sharpe:
        reasons.append(f"DSR {dsr:.3f} ({source}) ≥ {limits.min_deflated_sharpe} over "
                       f"{trials} trials of the recipe family{spread}")
    else:
        ok = False
        reasons.append(f"DSR {dsr:.3f} ({source}) < {limits.min_deflated_sharpe} over "
                       f"{trials} trials of the recipe family{spread}")
    ric = challenger["rank_ic"]
    if ric > limits.min_rank_ic:
        reasons.append(f"rank IC {ric:.4f} > {limits.min_rank_ic}")
    else:
        ok = False
        reasons.append(f"rank IC {ric:.4f} ≤ {limits.min_rank_ic}")
    for leak in leaks or []:
        ok = False
        reasons.append(f"suspected leak in {leak['feature']}: {leak['rule']}")
    net = challenger.get("sharpe_net")
    if baselines and net is not None and net == net:
        best = max(baselines, key=baselines.get)
        lift = net - baselines[best]
        text = (f"after-cost Sharpe {net:.2f} vs best baseline {best} "
                f"{baselines[best]:.2f}: lift {lift:+.2f}")
        if limits.min_lift_over_baseline is None:
            reasons.append(f"{text} (baseline limit off)")
        elif lift >= limits.min_lift_over_baseline:
            reasons.append(f"{text} ≥ {limits.min_lift_over_baseline}")
        else:
            ok = False
            reasons.append(f"{text} < {limits.min_lift_over_baseline}: a baseline that needs "
                           "no model does better")
    if champion is None:
        reasons.append("no current champion")
    elif "p_value" in champion:
        won = (f", better on {int(challenger['paths_won'])} of {int(challenger['n_paths'])} "
               f"paths" if "paths_won" in challenger else "")
        diff = net - champion["sharpe_net"]
        p = champion["p_value"]
        text = (f"after-cost Sharpe {net:.2f} vs champion's {champion['sharpe_net']:.2f} "
                f"({diff:+.2f}); paired bootstrap p = {p:.3f}{won}; rank IC {ric:.4f} vs "
                f"{champion['rank_ic']:.4f}")
        if diff >= limits.min_improvement and p < limits.significance:
            reasons.append(f"{text}: significant at {limits.significance}")
        else:
            ok = False
            why = ("not significant" if p >= limits.significance else
                   f"below the margin {limits.min_improvement}")
            reasons.append(f"{text}: {why}, the champion stays")
    else:  # a champion scored on rank IC only (e.g. the TFT comparison)
        need = champion["rank_ic"] + limits.min_improvement
        if ric > need:
            reasons.append(f"rank IC {ric:.4f} > champion's {champion['rank_ic']:.4f} "
                           f"+ {limits.min_improvement}")
        else:
            ok = False
            reasons.append(f"rank IC {ric:.4f} ≤ champion's {champion['rank_ic']:.4f} "
                           f"+ {limits.min_improvement}: a tie keeps the champion")
    return GateDecision(promote=ok, reasons=reasons)
