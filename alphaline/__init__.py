"""alphaline: research-to-production loop for systematic trading."""

from alphaline.runtime import configure_environment

__version__ = "0.1.0"

configure_environment()
