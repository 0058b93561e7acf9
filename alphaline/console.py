"""One run's console and log file: what the user sees, what is kept, and what is said once.

A *run* is one CLI command or one flow started outside the CLI. :func:`run_log` sets it up
and takes it down again:

- the console (stderr) gets the project's log lines (``alphaline.*`` and Prefect's flow and
  task run lines) from INFO, every other library's from WARNING, and the progress bars;
- the log file, ``<state>/logs/<command>.log`` (appended, rotated at 10 MB), gets every
  record at INFO and above, the per-unit progress lines and every warning;
- a Python warning is said at most once per run (keyed on category, message and the module
  that issued it), and its repeats are counted in the file when the run ends;
- third-party deprecations (``DeprecationWarning``, ``PendingDeprecationWarning``,
  ``FutureWarning``, SQLAlchemy's ``SAWarning``) raised from outside the project go to the
  file only: the user cannot act on them, a developer reads them there;
- :func:`say_once` lets project code say a line that would repeat per fold or per split
  once, with the count at the end of the run.

Progress bars (:class:`Progress`, :func:`track`) are tqdm bars on stderr with the time
left; they hide themselves when stderr is not a terminal or under pytest, and each finished
unit is one line in the log file either way.
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.logging import RichHandler

PROGRESS_LOGGER = "alphaline.progress"
WARNINGS_LOGGER = "py.warnings"
# loggers whose INFO lines the user wants on the console; everyone else's from WARNING
CONSOLE_INFO_LOGGERS = ("alphaline", "prefect.flow_runs", "prefect.task_runs")
# third-party loggers that say one INFO line per HTTP request: kept at WARNING everywhere
CHATTY_LOGGERS = ("httpx", "urllib3")
# third-party warning categories kept out of the console (written to the log file)
FILE_ONLY_CATEGORIES: tuple[type[Warning], ...] = (DeprecationWarning,
                                                   PendingDeprecationWarning, FutureWarning)
FILE_ONLY_CATEGORY_NAMES = frozenset({"sqlalchemy.exc.SAWarning"})
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_BYTES, LOG_BACKUPS = 10_000_000, 3

_lock = threading.RLock()
_ORIGINAL_SHOWWARNING = warnings.showwarning


def is_project_module(name: str) -> bool:
    """Code of this project (or the user's own script), as opposed to a library."""
    return name == "__main__" or name == "alphaline" or name.startswith("alphaline.")


def file_only_category(category: type[Warning]) -> bool:
    """A category of third-party noise: deprecations and their kin."""
    return issubclass(category, FILE_ONLY_CATEGORIES) or any(
        f"{c.__module__}.{c.__qualname__}" in FILE_ONLY_CATEGORY_NAMES for c in category.__mro__)


def _issuer(filename: str) -> str:
    """The module that called ``warnings.warn``: the first frame outside the warnings
    machinery and this module (a library's ``stacklevel`` may point at its caller, but the
    issuer is who decided to warn). Falls back to the file name."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name not in ("warnings", __name__, "logging"):
            return name
        frame = frame.f_back
    return Path(filename).stem


@dataclass
class _Said:
    """The first time a key was said, and how often it came back."""

    logger: logging.Logger
    level: int
    msg: str
    args: tuple
    count: int = 1


@dataclass
class RunLog:
    """The active run: its command, log file and what it has said."""

    command: str
    console: logging.Handler
    file: logging.Handler | None = None
    path: Path | None = None
    said: dict[Any, _Said] = field(default_factory=dict)
    warned: dict[tuple, _Said] = field(default_factory=dict)
    _restore: list = field(default_factory=list)

    def attach_file(self, log_dir: Path) -> Path:
        """Write this run's log to ``log_dir/<command>.log`` (once; later calls keep it)."""
        if self.file is not None:
            return self.path
        log_dir.mkdir(parents=True, exist_ok=True)
        self.path = log_dir / f"{self.command.replace(' ', '-')}.log"
        handler = logging.handlers.RotatingFileHandler(self.path, maxBytes=LOG_BYTES,
                                                       backupCount=LOG_BACKUPS,
                                                       encoding="utf-8")
        handler.setFormatter(logging.Formatter(FILE_FORMAT))
        handler.setLevel(logging.DEBUG)
        logging.getLogger().addHandler(handler)
        self.file = handler
        handler.emit(logging.LogRecord(__name__, logging.INFO, __file__, 0,
                                       "=== alphaline %s (pid %d)", (self.command, os.getpid()),
                                       None))
        return self.path


_active: RunLog | None = None


def current() -> RunLog | None:
    """The run in progress in this process, if any."""
    return _active


class ConsoleFilter(logging.Filter):
    """What reaches the console: project lines from INFO, libraries' from WARNING, no
    progress lines (the bar shows them), no warning the run keeps for the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == PROGRESS_LOGGER or record.name.startswith(PROGRESS_LOGGER + "."):
            return False
        if not getattr(record, "alphaline_console", True):
            return False
        if record.levelno >= logging.WARNING:
            return True
        return any(record.name == n or record.name.startswith(n + ".")
                   for n in CONSOLE_INFO_LOGGERS)


class ConsoleHandler(RichHandler):
    """The console's handler: it clears the progress bars before it writes a line and
    redraws them after, so bars and lines do not interleave."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode(file=sys.stderr):
            super().emit(record)


def console_handler(rich_console: Console | None = None) -> logging.Handler:
    handler = ConsoleHandler(console=rich_console, show_path=False)
    # a formatter marks it as the user's own handler: Prefect then leaves the root alone
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(ConsoleFilter())
    return handler


def _console_stream_handler(h: logging.Handler) -> bool:
    """A handler that writes to the terminal (ours to replace for the run's duration)."""
    if isinstance(h, RichHandler) or type(h).__name__ == "PrefectConsoleHandler":
        return True
    return (isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            and getattr(h, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__,
                                               sys.__stdout__))


def _showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: IO[str] | None = None, line: str | None = None) -> None:
    """``warnings.showwarning`` during a run: once per (category, message, issuer), to the
    log file always and to the console unless it is third-party noise."""
    run = _active
    if run is None or file is not None:  # no run, or a caller that named its own stream
        _ORIGINAL_SHOWWARNING(message, category, filename, lineno, file, line)
        return
    issuer = _issuer(filename)
    key = (category, str(message), issuer)
    with _lock:
        seen = run.warned.get(key)
        if seen is not None:
            seen.count += 1
            return
        project = is_project_module(issuer)
        to_console = project or not file_only_category(category)
        logger = logging.getLogger(WARNINGS_LOGGER)
        run.warned[key] = _Said(logger, logging.WARNING, "%s: %s (%s:%d)",
                                (category.__name__, message, filename, lineno))
    logger.warning("%s: %s (%s:%d)", category.__name__, message, filename, lineno,
                   extra={"alphaline_console": to_console, "warning_issuer": issuer})


def say_once(logger: logging.Logger, level: int, key: Any, msg: str, *args: Any) -> None:
    """Log ``msg`` the first time ``key`` comes up in this run; count the repeats and say
    the count when the run ends. Outside a run every call logs (a library call, a test)."""
    run = _active
    if run is None:
        logger.log(level, msg, *args)
        return
    with _lock:
        seen = run.said.get(key)
        if seen is not None:
            seen.count += 1
            return
        run.said[key] = _Said(logger, level, msg, args)
    logger.log(level, msg, *args)


def _summarize(run: RunLog) -> None:
    """Say each repeated line once more, with its count; warnings' counts go to the file."""
    for said in run.said.values():
        if said.count > 1:
            said.logger.log(said.level, said.msg + " — said %d times this run",
                            *said.args, said.count)
    for said in run.warned.values():
        if said.count > 1:
            said.logger.warning(said.msg + " — raised %d times this run", *said.args,
                                said.count, extra={"alphaline_console": False})


def start_run(command: str, log_dir: Path | None = None, *, rich_console: Any | None = None,
              level: int = logging.INFO) -> RunLog:
    """Set up the console, the log file (when ``log_dir`` is known) and the warnings
    routing for one run. Use :func:`run_log` unless the run ends with the process."""
    global _active
    root = logging.getLogger()
    with _lock:
        if _active is not None:
            end_run()
        handler = console_handler(rich_console)
        run = RunLog(command, handler)
        original = root.handlers[:]
        replaced = [h for h in original if _console_stream_handler(h)]
        for h in replaced:
            root.removeHandler(h)
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(level)
        chatty = {n: logging.getLogger(n).level for n in CHATTY_LOGGERS}
        for n in CHATTY_LOGGERS:
            logging.getLogger(n).setLevel(logging.WARNING)
        before = warnings.filters[:]
        if not sys.warnoptions:  # an explicit -W or PYTHONWARNINGS wins
            # every occurrence reaches the run, which says it once and counts the rest
            for category in FILE_ONLY_CATEGORIES:
                warnings.filterwarnings("always", category=category)
        ours = [f for f in warnings.filters if f not in before]
        # captureWarnings first, so that a library's captureWarnings(True) (Great
        # Expectations calls it at import) is a no-op and cannot take the hook away
        previous = warnings.showwarning
        captured_here = previous is not logging._showwarning
        if captured_here:
            logging.captureWarnings(True)
        warnings.showwarning = _showwarning

        def restore() -> None:
            root.removeHandler(handler)
            # the handlers in their original order (the replaced ones back in their places),
            # then any a library added meanwhile
            kept = [h for h in original if h in replaced or h in root.handlers]
            root.handlers[:] = kept + [h for h in root.handlers if h not in kept]
            root.setLevel(old_level)
            for n, lvl in chatty.items():
                logging.getLogger(n).setLevel(lvl)
            # the filters as they were, after those libraries added meanwhile (at import)
            added = [f for f in warnings.filters if f not in before and f not in ours]
            warnings.filters[:] = added + before
            warnings._filters_mutated()
            if captured_here:
                logging.captureWarnings(False)
            else:
                warnings.showwarning = previous

        run._restore.append(restore)
        _active = run
    if log_dir is not None:
        run.attach_file(log_dir)
    return run


def end_run() -> None:
    """Say the counts, close the log file and give back what :func:`start_run` changed."""
    global _active
    with _lock:
        run = _active
        if run is None:
            return
        _summarize(run)
        _active = None
        if run.file is not None:
            logging.getLogger().removeHandler(run.file)
            run.file.close()
        for restore in reversed(run._restore):
            restore()


@contextlib.contextmanager
def run_log(command: str, log_dir: Path | None = None, *, rich_console: Any | None = None
            ) -> Iterator[RunLog]:
    """A run for the ``with`` block, or the one already in progress (a flow the CLI
    started), which then gets the log file if it had none."""
    if _active is not None:
        if log_dir is not None:
            _active.attach_file(log_dir)
        yield _active
        return
    run = start_run(command, log_dir, rich_console=rich_console)
    try:
        yield run
    finally:
        if _active is run:
            end_run()


def bars_disabled() -> bool | None:
    """tqdm's ``disable`` for a bar: off under pytest, else None (off when stderr is not a
    terminal)."""
    return True if "PYTEST_CURRENT_TEST" in os.environ else None


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _terminal_width(file: IO[str]) -> int | None:
    """The terminal's width, or None when unknown (a pseudo-terminal without a size reports
    0 columns, on which tqdm would draw an empty bar)."""
    try:
        columns = os.get_terminal_size(file.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return columns or None


class Progress:
    """A bar over ``total`` units of long work, with the time left, that writes one line per
    finished unit to the run's log file (the console has the bar instead).

    ``disable``: None hides the bar when stderr is not a terminal and under pytest."""

    def __init__(self, desc: str, total: int | None, unit: str = "it", *,
                 disable: bool | None = None, file: IO[str] | None = None):
        from tqdm.auto import tqdm

        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self._t0 = time.monotonic()
        self._log = logging.getLogger(PROGRESS_LOGGER)
        file = file if file is not None else sys.stderr
        width = _terminal_width(file)
        self._bar = tqdm(total=total, desc=desc, unit=unit, leave=None, file=file,
                         dynamic_ncols=width is not None, ncols=None if width else 100,
                         disable=bars_disabled() if disable is None else disable)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def remaining(self) -> float | None:
        """Seconds left at the rate so far; None before the first unit or without a total."""
        if not self.n or not self.total:
            return None
        return self.elapsed / self.n * max(self.total - self.n, 0)

    def advance(self, note: str = "") -> None:
        """One unit done; ``note`` (the trial's value, the best so far) shows on the bar."""
        self.n += 1
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(1)
        left = self.remaining()
        of = f"/{self.total}" if self.total else ""
        self._log.info("%s: %s %d%s done%s, %s elapsed%s", self.desc, self.unit, self.n, of,
                       f" ({note})" if note else "", _duration(self.elapsed),
                       "" if left is None else f", {_duration(left)} left")

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable, desc: str, unit: str = "it", total: int | None = None) -> Iterator:
    """``items`` with a :class:`Progress` over them."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, total, unit) as bar:
        for item in items:
            yield item
            bar.advance()
