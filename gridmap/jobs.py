"""Background jobs: long work run on runner threads, with progress and a result to fetch.

A job is a row of ``jobs``: its kind, parameters and uploaded input (``payload``),
its status (queued → running → done or failed), progress (step, done of total), and
its result or its error (a problem+json object). The web server answers 202 with the
job's address; any runner thread of any worker claims the oldest queued job
(``FOR UPDATE SKIP LOCKED``) and runs its handler in one transaction, which also
marks the job done: the work and "done" are committed together or not at all.

Runners die (a worker restarted, the server stopped, a machine lost). Every runner
beats the ``heartbeat_at`` of its jobs; a running job whose runner process is gone
(same host, no such pid) or whose heartbeat is older than :data:`STALE_AFTER_S` is
marked failed by the next runner that looks, with nothing of it written (its
transaction died with it). Queued jobs wait for the next start.

Handlers are registered per kind with :func:`handler`, beside the endpoints whose
work they do (``api/jobs.py`` for imports, ``api/coverage.py``, ``api/plans.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridmap.db.engine import session_scope
from gridmap.models import Job

log = logging.getLogger(__name__)

#: Seconds between a runner's heartbeats of its running jobs.
HEARTBEAT_S = 5.0
#: A running job whose heartbeat is older than this (s) lost its runner.
STALE_AFTER_S = 60.0
#: Seconds an idle runner thread waits before looking for queued jobs again
#: (a job made in the same process wakes it at once).
POLL_S = 1.0
#: Shortest time (s) between two progress writes of one job.
PROGRESS_EVERY_S = 0.3
#: Most jobs waiting at once; more are refused until some finish.
MAX_QUEUED = 100
#: Most unfinished jobs of one author (an anonymous caller's author is a digest of
#: its address), so one client cannot fill the queue.
MAX_UNFINISHED_PER_AUTHOR = 5
#: Finished jobs are deleted after this many days.
KEEP_DAYS = 7
#: The kinds of job, each with a handler beside its endpoint.
JOB_KINDS = ("import", "coverage", "redraw")


@dataclass
class JobContext:
    """What a handler gets: the job's parameters, input and a progress callback."""

    id: str
    kind: str
    params: dict[str, Any]
    payload: bytes | None
    author: str
    #: Report progress: (step, done, total).
    progress: Callable[[str, int, int], None]


#: A handler does the work in the session it is given and returns the result (JSON).
Handler = Callable[[Session, JobContext], dict[str, Any]]
#: Turns a handler's exception into a problem+json object (title, status, detail, ...).
ErrorDescriber = Callable[[Exception], dict[str, Any]]

HANDLERS: dict[str, Handler] = {}


class QueueFull(RuntimeError):
    """:data:`MAX_QUEUED` jobs wait already."""


class JobLost(RuntimeError):
    """The job was failed by another runner (its heartbeat was stale) while it ran."""


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function doing the work of jobs of ``kind``."""

    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function

    return register


def new_job_id() -> str:
    """An unguessable job id (128 random bits, hex): knowing it is what reading needs."""
    return secrets.token_hex(16)


def submit(
    session: Session,
    kind: str,
    params: dict[str, Any],
    author: str,
    read_role: str = "viewer",
    payload: bytes | None = None,
    dedupe: bool = False,
) -> Job:
    """Queue a job; with ``dedupe`` an identical queued or running job is returned instead.

    Parameters
    ----------
    params
        JSON parameters of the handler.
    read_role
        The role a caller needs to read the job and its result.
    payload
        The uploaded input (an import's file), kept until the job ends.
    dedupe
        Whether the same kind and parameters share one job while it is unfinished
        (a city-wide coverage asked for twice is computed once).

    Raises
    ------
    QueueFull
        When :data:`MAX_QUEUED` jobs are waiting, or the author has
        :data:`MAX_UNFINISHED_PER_AUTHOR` unfinished ones (a twin found by ``dedupe``
        is returned all the same).
    """
    if kind not in HANDLERS:
        raise ValueError(f"no handler for jobs of kind {kind!r}")
    key = None
    if dedupe:
        canonical = json.dumps([kind, params], sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(canonical.encode()).hexdigest()
        twin = session.scalar(
            select(Job).where(Job.dedupe_key == key, Job.status.in_(("queued", "running")))
        )
        if twin is not None:
            return twin
    queued = session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued"))
    if queued >= MAX_QUEUED:
        raise QueueFull(f"{queued} jobs are waiting; try again when some have finished")
    mine = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.author == author, Job.status.in_(("queued", "running")))
    )
    if mine >= MAX_UNFINISHED_PER_AUTHOR:
        raise QueueFull(
            f"{mine} of your jobs are unfinished; try again when one of them has finished"
        )
    values = {
        "id": new_job_id(),
        "kind": kind,
        "params": params,
        "payload": payload,
        "author": author,
        "read_role": read_role,
        "dedupe_key": key,
    }
    statement = insert(Job).values(**values)
    if key is not None:
        statement = statement.on_conflict_do_nothing(
            index_elements=["dedupe_key"], index_where=text("status IN ('queued', 'running')")
        )
    made = session.scalar(statement.returning(Job.id))
    if made is None:  # an unfinished twin exists
        made = session.scalar(
            select(Job.id).where(Job.dedupe_key == key, Job.status.in_(("queued", "running")))
        )
    return session.get(Job, made)


def get_job(session: Session, job_id: str) -> Job | None:
    """The job with this id, or ``None``."""
    return session.get(Job, job_id)


def recent_jobs(session: Session, limit: int = 50) -> list[Job]:
    """The newest jobs, newest first."""
    return list(session.scalars(select(Job).order_by(Job.created_at.desc()).limit(limit)))


def describe(job: Job) -> dict[str, Any]:
    """A job as JSON: status, progress, times, and the result or the error."""

    def when(value) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": {"step": job.step, "done": job.done, "total": job.total},
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
        "result": job.result,
        "error": job.error,
    }


def area_buildings(session: Session, code: str) -> int:
    """Buildings inside the area ``code`` of any level (0 for an unknown code).

    The size measure that sends coverage and redraw to a background job. The area's
    boundary goes in as a value, so the planner sees how much of the table it holds
    (a city of 1,000,000 buildings: 0.5 s in a parallel scan, 1.4 s through the index).
    """
    boundary = session.scalar(
        text("SELECT ST_AsEWKB(geom) FROM areas WHERE code = :code"), {"code": code}
    )
    if boundary is None:
        return 0
    return int(
        session.scalar(
            text("SELECT count(*) FROM buildings WHERE ST_Intersects(point, ST_GeomFromEWKB(:g))"),
            {"g": bytes(boundary)},
        )
        or 0
    )


def default_error(exc: Exception) -> dict[str, Any]:
    """A problem object for an exception no describer knows: no detail of its own,
    since an unexpected error's message may carry row values."""
    return {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the job failed; the error is in the server log",
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runner:
    """Threads that run queued jobs in this process.

    Parameters
    ----------
    engine
        The database.
    threads
        Jobs run at once by this process.
    describe_error
        Turns a handler's exception into the job's problem+json error.
    context
        Makes the context each job runs in (the web app's, so handlers use its
        settings and code as a request would).
    """

    def __init__(
        self,
        engine: Engine,
        threads: int = 1,
        describe_error: ErrorDescriber = default_error,
        context: Callable[[], AbstractContextManager] = nullcontext,
    ):
        self.engine = engine
        self.threads = threads
        self.describe_error = describe_error
        self.context = context
        self.host = socket.gethostname()
        #: host:pid:token, unique per runner even with several in one process.
        self.name = f"{self.host}:{os.getpid()}:{secrets.token_hex(3)}"
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._workers: list[threading.Thread] = []
        #: Jobs this runner's threads are working on now (only these get heartbeats).
        self._running: set[str] = set()

    # -- life ------------------------------------------------------------------------

    def start(self) -> Runner:
        """Fail the jobs of dead runners, then start the threads (daemons)."""
        try:
            self.fail_orphans()
        except Exception as exc:  # the database is down: the heartbeat tries again
            log.warning("job runner cannot reach the database: %s", type(exc).__name__)
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, name=f"gridmap-job-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)
        beat = threading.Thread(target=self._beat, name="gridmap-job-heartbeat", daemon=True)
        beat.start()
        self._workers.append(beat)
        return self

    def wake(self) -> None:
        """Look for queued jobs now (a job was just submitted)."""
        self._wake.set()

    def stop(self, reason: str = "the server stopped while the job ran") -> None:
        """Stop taking jobs and fail the ones running here (their work is rolled back
        when the process ends, so nothing of them is written)."""
        self._stopped.set()
        self._wake.set()
        self._fail_where(Job.runner == self.name, reason)

    # -- the loop --------------------------------------------------------------------

    def _loop(self) -> None:
        unreachable = False
        while not self._stopped.is_set():
            try:
                job_id = self.claim()
                unreachable = False
            except Exception as exc:  # the database is down: wait and try again
                if not unreachable:  # once per outage, not once a second
                    log.warning("job runner cannot reach the database: %s", type(exc).__name__)
                unreachable, job_id = True, None
            if job_id is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            try:
                self.run(job_id)
            except Exception as exc:  # the database went away while it ended the job:
                # the job stays "running" until its heartbeat is stale, then it is failed
                log.warning("job %s could not be ended: %s", job_id, type(exc).__name__)

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT_S):
            try:
                working = list(self._running)
                if working:
                    with self.engine.begin() as conn:
                        conn.execute(
                            update(Job)
                            .where(Job.id.in_(working), Job.status == "running")
                            .values(heartbeat_at=func.now())
                        )
                self.fail_orphans()
            except Exception as exc:
                log.warning("job heartbeat failed: %s", type(exc).__name__)

    def claim(self) -> str | None:
        """Take the oldest queued job for this runner; its id, or ``None``."""
        with self.engine.begin() as conn:
            return conn.execute(
                text(
                    "UPDATE jobs SET status = 'running', runner = :runner, started_at = now(), "
                    "heartbeat_at = now() WHERE id = (SELECT id FROM jobs WHERE status = "
                    "'queued' ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
                ),
                {"runner": self.name},
            ).scalar()

    def run(self, job_id: str) -> None:
        """Run one claimed job to done or failed."""
        self._running.add(job_id)
        try:
            self._run(job_id)
        finally:
            self._running.discard(job_id)

    def _run(self, job_id: str) -> None:
        with session_scope(self.engine) as session:
            job = session.get(Job, job_id)
            context = JobContext(
                id=job.id,
                kind=job.kind,
                params=job.params,
                payload=job.payload,
                author=job.author,
                progress=self._progress_writer(job.id),
            )
        try:
            with self.context(), session_scope(self.engine) as session:
                result = HANDLERS[context.kind](session, context)
                finished = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.runner == self.name, Job.status == "running")
                    .values(
                        status="done",
                        result=result,
                        done=func.coalesce(Job.total, Job.done),
                        payload=None,
                        finished_at=func.now(),
                        heartbeat_at=func.now(),
                    )
                )
                if finished.rowcount != 1:
                    raise JobLost(job_id)
        except JobLost:
            log.warning("job %s was taken from this runner while it ran", job_id)
        except Exception as exc:
            with self.context():
                error = self.describe_error(exc)
            if error.get("status", 500) >= 500:
                log.error("job %s (%s) failed: %s", job_id, context.kind, type(exc).__name__)
            self._fail_where(Job.id == job_id, error=error)

    def _progress_writer(self, job_id: str) -> Callable[[str, int, int], None]:
        last = [0.0]

        def write(step: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY_S and done < total:
                return
            last[0] = now
            with self.engine.begin() as conn:
                conn.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(step=step, done=int(done), total=int(total), heartbeat_at=func.now())
                )

        return write

    # -- failures --------------------------------------------------------------------

    def _fail_where(
        self, condition: Any, reason: str | None = None, error: dict | None = None
    ) -> int:
        problem = error or {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": f"{reason}; nothing of it was written. Submit it again.",
        }
        with self.engine.begin() as conn:
            return conn.execute(
                update(Job)
                .where(condition, Job.status == "running")
                .values(status="failed", error=problem, payload=None, finished_at=func.now())
            ).rowcount

    def fail_orphans(self) -> int:
        """Fail running jobs whose runner is gone; delete long-finished jobs.

        A runner is gone when it ran on this host and its process no longer exists,
        or when its heartbeat is older than :data:`STALE_AFTER_S` (any host).
        """
        with self.engine.begin() as conn:
            running = conn.execute(select(Job.id, Job.runner).where(Job.status == "running")).all()
            conn.execute(
                text("DELETE FROM jobs WHERE finished_at < now() - make_interval(days => :days)"),
                {"days": KEEP_DAYS},
            )
        dead = [
            job_id
            for job_id, runner in running
            if runner
            and runner.split(":")[0] == self.host
            and not _pid_alive(int(runner.split(":")[1]))
        ]
        failed = 0
        if dead:
            failed += self._fail_where(
                Job.id.in_(dead), "the process running the job ended before it finished"
            )
        failed += self._fail_where(
            Job.heartbeat_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, STALE_AFTER_S),
            f"the job's runner gave no sign of life for {STALE_AFTER_S:g} s",
        )
        return failed


def wait_for(
    engine: Engine,
    job_id: str,
    on_progress: Callable[[Job], None] | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
) -> Job:
    """Poll a job until it is done or failed; call ``on_progress`` at each look.

    Raises
    ------
    LookupError
        No job has this id.
    TimeoutError
        ``timeout_s`` passed first.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            if job is None:
                raise LookupError(f"no job {job_id}")
            session.expunge(job)
        if on_progress is not None:
            on_progress(job)
        if job.status in ("done", "failed"):
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {job.status}")
        time.sleep(poll_s)
