"""Importing alphaline changes nothing in the process: no environment variables, no
matplotlib backend. Set-up belongs to entry points (the CLI, the flows, conftest)."""

import json
import os
import subprocess
import sys

PACKAGES = ["alphaline", "alphaline.features", "alphaline.models", "alphaline.pipelines",
            "alphaline.trading", "alphaline.flows"]
# MLflow runs this file as a script to load the model; importing it is not its use.
SKIP = ["alphaline.models.pyfunc_model"]

IMPORT_ALL = f"""
import importlib, pkgutil

imported = []
for name in {PACKAGES!r}:
    package = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(package.__path__, prefix=name + "."):
        if info.name not in {SKIP!r} and info.name not in imported:
            importlib.import_module(info.name)
            imported.append(info.name)
"""

# Pass 1: which other modules does importing alphaline load?
DEPENDENCIES = """
import json, sys
initial = set(sys.modules)
""" + IMPORT_ALL + """
print(json.dumps([m for m in sys.modules
                  if m not in initial and m != "alphaline" and not m.startswith("alphaline.")]))
"""

# Pass 2: load those first (some libraries set variables of their own at import: MLflow a
# telemetry session id, Feast a Prometheus folder, OpenMP runtimes KMP_*), then snapshot the
# environment and import alphaline: whatever changes now, alphaline's own code changed.
PROBE = """
import importlib, json, os, sys
import warnings

warnings.simplefilter("ignore")
for name in json.loads(open(sys.argv[1]).read()):
    try:
        importlib.import_module(name)
    except (Exception, SystemExit):
        pass  # a private or platform-specific submodule: not ours to judge
import matplotlib

backend_before = matplotlib.rcParams._get_backend_or_none()
callers, use = [], matplotlib.use


def recording_use(*args, **kwargs):  # names the module in the failure message
    callers.append(sys._getframe(1).f_code.co_filename)
    return use(*args, **kwargs)


matplotlib.use = recording_use
before = dict(os.environ)
""" + IMPORT_ALL + """
after = dict(os.environ)
print(json.dumps({
    "imported": imported,
    "changed": sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)),
    "backend_before": backend_before,
    "backend": matplotlib.rcParams._get_backend_or_none(),
    "use_called_from": callers,
}))
"""


def _run(code: str, *args: str, cwd, env) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=270)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


def test_importing_every_module_has_no_side_effects(tmp_path):
    # A clean slate: none of the variables configure_environment sets and no backend chosen
    # from outside, so a value seen afterwards came from an import.
    from alphaline.runtime import DEFAULTS

    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS and k != "MPLBACKEND"}
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")  # no user matplotlibrc choosing a backend
    dependencies = tmp_path / "dependencies.json"
    dependencies.write_text(_run(DEPENDENCIES, cwd=tmp_path, env=env))
    out = json.loads(_run(PROBE, str(dependencies), cwd=tmp_path, env=env))

    assert "alphaline.flows.cli" in out["imported"] and len(out["imported"]) > 40
    assert out["changed"] == [], f"importing alphaline changed os.environ: {out['changed']}"
    # None: nothing called matplotlib.use (or set rcParams["backend"]); pyplot may be imported
    # by a library, but choosing a backend is the entry point's business.
    assert out["backend_before"] is None
    assert out["backend"] is None and not out["use_called_from"], \
        f"matplotlib backend forced to {out['backend']!r} by {out['use_called_from']}"
