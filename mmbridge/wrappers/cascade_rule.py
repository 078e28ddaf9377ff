"""The cascade's one rule: answer at this stage, or ask the next one.

A stage's answer stays when it was parsed, carries a confidence, and that confidence reaches the
task's threshold; anything else (no threshold for the task, no confidence, an unparsed answer, an
error) goes to the next stage, and the last stage answers whatever it says. The live wrapper
(``wrappers.Cascade``) and the offline sweep over an evaluation's rows (``eval.cascade``, which
``cascade fit`` chooses thresholds with) both decide through ``sureness`` and ``stays``, so the
thresholds a fit chooses are fitted to the policy that runs.
"""

from __future__ import annotations

import math

__all__ = ["NEVER", "stays", "sureness"]

#: the sureness of an answer that cannot stay at its stage: below every threshold
NEVER = -math.inf


def sureness(confidence: float | None, parsed: bool, failed: bool = False) -> float:
    """How sure a stage's answer is, as the rule reads it: its confidence, or NEVER when it failed,
    could not be parsed, or gave no confidence."""
    if failed or not parsed or confidence is None:
        return NEVER
    return float(confidence)


def stays(sure: float, threshold: float | None) -> bool:
    """Whether an answer this sure (``sureness``) is kept, under the task's threshold (None: never)."""
    return threshold is not None and sure >= threshold
