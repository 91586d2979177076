"""SIGINT (Ctrl-C) and SIGTERM handlers, put back as they were once a piece of work ends."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signal_handlers(handler: Callable[[int, object], None] | None = None) -> Iterator[None]:
    """Inside, ``handler`` (when given) receives every stop signal the process does not ignore (a shell starts
    background jobs with SIGINT ignored, and an ignored signal stays ignored); on the way out, each stop signal's
    handler is the one it had on the way in, whatever the work inside installed (sae-lens installs its own and leaves
    them). Only the main thread may set handlers (Python's rule): elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    if handler is not None:
        for number, current in previous.items():
            if current is not signal.SIG_IGN:
                signal.signal(number, handler)
    try:
        yield
    finally:
        for number, current in previous.items():
            if current is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(number, current)
