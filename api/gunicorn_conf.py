"""gunicorn's settings for ``gridmap serve``: threads, limits and problem+json refusals.

Why threads (``gthread``): a sync worker serves one request at a time, so two slow
requests on two workers left ``/health`` unanswered for 33 s, and gunicorn's
timeout then killed the worker mid-request. A gthread worker serves ``threads``
requests at once; its main loop reports to the arbiter whatever the request
threads do, so a slow request is never the reason a worker is killed. Work that
takes longer than a request should runs as a background job (``gridmap/jobs.py``)
in a job process the arbiter starts beside the workers (``api/job_worker.py``), so
a job's work never holds the GIL of a process serving requests; a request that
still runs too long is answered 503 by the app's time limit (``api/timelimit.py``).

Every value can be overridden on gunicorn's command line or with ``GUNICORN_CMD_ARGS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

from gunicorn import util

from gridmap.logs import install as install_log_scrubbing

# The arbiter reads this file before it forks: scrubbing from here covers its own log
# lines and a worker's boot traceback, which come before the app is made.
install_log_scrubbing()

worker_class = "gthread"
#: Requests one worker serves at once; slow ones leave the rest to short reads.
threads = int(os.environ.get("GRIDMAP_THREADS", "8"))
#: Seconds without a word from a worker's main loop before the arbiter kills it. The
#: main loop of a gthread worker does not wait on requests, so this only catches a
#: worker that hangs as a whole; requests have their own limit (REQUEST_TIME_LIMIT).
timeout = 120
graceful_timeout = 30
keepalive = 5
#: Longest request line (method, path and query): gunicorn's most. Longer ones are
#: answered 414 as problem+json (below); the app reads query strings of 8,000 bytes.
limit_request_line = 8190
#: Most header fields and longest header field of a request: gunicorn's defaults.
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own refusal (bad request line, headers too large) as problem+json.

    Replaces ``gunicorn.util.write_error``, whose answer is an HTML page. The detail
    is gunicorn's message without the part of the request it quotes (a request line
    may carry anything), so nothing the client sent is echoed.
    """
    detail = (mesg.split("'", 1)[0].strip() or reason)[:200]
    if status_int == 414:
        detail = f"the request line is longer than {limit_request_line} bytes"
    elif status_int == 431:
        detail = (
            f"at most {limit_request_fields} header fields of at most "
            f"{limit_request_field_size} bytes each are read"
        )
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status_int, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin1") + body)


def post_fork(server: Any, worker: Any) -> None:
    """In each worker: gunicorn's refusals answer problem+json."""
    util.write_error = write_problem


class JobProcess:
    """Keeps the job process (``python -m api.job_worker``) running beside the workers."""

    def __init__(self, log: Any):
        self.log = log
        self.stopping = threading.Event()
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._keep, name="gridmap-jobs", daemon=True)

    def _keep(self) -> None:
        while not self.stopping.is_set():
            self.process = subprocess.Popen([sys.executable, "-m", "api.job_worker"])
            self.log.info("job process started (pid: %s)", self.process.pid)
            self.process.wait()
            if not self.stopping.wait(1.0):
                self.log.warning("job process %s ended; starting another", self.process.pid)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=graceful_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()


def when_ready(server: Any) -> None:
    """In the arbiter, once it listens: start the job process."""
    server.gridmap_jobs = JobProcess(server.log)
    server.gridmap_jobs.start()


def on_exit(server: Any) -> None:
    """In the arbiter, when it stops: stop the job process (its running jobs are failed)."""
    jobs = getattr(server, "gridmap_jobs", None)
    if jobs is not None:
        jobs.stop()
