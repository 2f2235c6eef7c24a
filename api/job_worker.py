"""The job process of ``gridmap serve``: background jobs beside the web workers.

Jobs run in a process of their own, not on threads of the web workers, so their
work (reading a 20 MB file, a city's coverage, a redraw) never holds the GIL of a
process serving requests: ``/health`` and short reads stay quick while it runs.
gunicorn's arbiter starts it and starts it again if it dies (``api/gunicorn_conf.py``);
it stops when asked (SIGTERM) or when the arbiter is gone. The jobs it was running
are failed, with nothing of them written, by the next runner to start. It runs at
a lower CPU priority (nice 10): on a busy machine requests are served first.
"""

from __future__ import annotations

import os
import signal
import threading

from api import create_app
from api.jobs import start_runner

#: How much lower the job process's CPU priority is than the web workers'.
JOB_NICENESS = 10


def main() -> None:
    """Run queued jobs until SIGTERM or until the parent process is gone."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    parent = os.getppid()
    os.nice(JOB_NICENESS)
    app = create_app()
    runner = start_runner(app)
    while not stopping.wait(1.0):
        if os.getppid() != parent:  # the server died without stopping us
            break
    runner.stop()


if __name__ == "__main__":
    main()
