"""Run slow work off the Tk thread and hand results back to it.

Tk may only be called from the thread that created it; worker threads (and audio callbacks)
``post`` callables into a queue that the Tk thread drains every few milliseconds.
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any, Callable


class TaskRunner:
    POLL_MS = 25

    def __init__(self, root):
        self.root = root
        self._queue: queue.Queue = queue.Queue()
        self.busy = 0
        self._poll()

    def post(self, fn: Callable, *args: Any) -> None:
        """Call ``fn(*args)`` on the Tk thread soon; safe from any thread."""
        self._queue.put((fn, args))

    def submit(self, work: Callable[[], Any], on_done: Callable[[Any], None],
               on_error: Callable[[BaseException], None]) -> threading.Thread:
        """Run ``work()`` in a daemon thread; ``on_done(result)`` or ``on_error(exc)`` on the Tk thread."""
        self.busy += 1

        def run():
            try:
                result = work()
            except BaseException as exc:  # noqa: BLE001 - every failure is reported in the window
                self.post(self._finish, on_error, exc)
            else:
                self.post(self._finish, on_done, result)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def _finish(self, callback, value):
        self.busy -= 1
        callback(value)

    def _poll(self):
        try:
            while True:
                try:
                    fn, args = self._queue.get_nowait()
                except queue.Empty:
                    break
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001 - shown by the window's error handler, polling goes on
                    self.root.report_callback_exception(*sys.exc_info())
        finally:
            self.root.after(self.POLL_MS, self._poll)
