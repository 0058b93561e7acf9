"""One bench stage in a child process, so that its peak RSS is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_stage(script: str, args: list[str]) -> tuple[dict, float]:
    """Run ``script`` with ``args``; its last stdout line is its figures (JSON). Returns the
    figures and the child's peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{Path(script).name} {' '.join(args)} failed")
    return json.loads(out.strip().splitlines()[-1]), round(usage.ru_maxrss / 1024, 1)
