"""alphaline: research-to-production loop for systematic trading.

Importing alphaline (or any of its modules) changes nothing in the process: environment
set-up belongs to entry points, which call :func:`alphaline.runtime.configure_environment`.
"""

__version__ = "0.1.0"
