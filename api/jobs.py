"""``/api/v1/jobs``: background jobs, and how an endpoint hands its work to one.

Large imports, city-wide coverage and redraws of large communities answer
``202 Accepted`` with ``Location: /api/v1/jobs/{id}``; the job's page says its
status (queued, running, done, failed), its progress and, when done, its result and
a link to it; a failed job carries the problem+json its request would have got.
A client may ask for a job whatever the size with ``Prefer: respond-async``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, request, url_for
from flask_smorest import Blueprint, abort
from sqlalchemy.orm import Session

from api.auth import current_principal, require
from api.database import db_session
from api.errors import problem, problems
from gridmap import jobs
from gridmap.io.layers import LAYERS
from gridmap.models import JOB_STATUSES
from gridmap.tokens import ANONYMOUS

#: Defaults of the job settings (each can be set as GRIDMAP_<NAME>).
DEFAULTS: dict[str, Any] = {
    # Runner threads per server process.
    "JOB_THREADS": 1,
    # Imports with a body larger than this (bytes) run as jobs: about 4,000 features,
    # a few seconds of checking; the 40,000 features of 20 MB took 30 s.
    "JOB_IMPORT_BYTES": 2 * 1024 * 1024,
    # Coverage of an area with more buildings than this runs as a job.
    "JOB_COVERAGE_BUILDINGS": 20_000,
    # Redraw of a community with more buildings than this runs as a job
    # (10,000 buildings took about 6 s here).
    "JOB_REDRAW_BUILDINGS": 5_000,
}

#: What a job id looks like (:func:`gridmap.jobs.new_job_id`); anything else is 404.
JOB_ID = re.compile(r"[0-9a-f]{32}")

bp = Blueprint(
    "jobs",
    __name__,
    url_prefix="/api/v1/jobs",
    description="Background jobs: large imports, city-wide coverage and redraws of large "
    "communities, with progress and the result to fetch.",
)


class JobProgressSchema(ma.Schema):
    """How far the job is."""

    step = ma.fields.String(allow_none=True)
    done = ma.fields.Integer()
    total = ma.fields.Integer(allow_none=True)


class JobLinkSchema(ma.Schema):
    """A link of a job."""

    rel = ma.fields.String()
    href = ma.fields.String()


class JobSchema(ma.Schema):
    """A background job."""

    id = ma.fields.String()
    kind = ma.fields.String(metadata={"enum": list(jobs.JOB_KINDS)})
    status = ma.fields.String(metadata={"enum": list(JOB_STATUSES)})
    progress = ma.fields.Nested(JobProgressSchema)
    created_at = ma.fields.String(allow_none=True)
    started_at = ma.fields.String(allow_none=True)
    finished_at = ma.fields.String(allow_none=True)
    result = ma.fields.Dict(allow_none=True, metadata={"description": "When done"})
    error = ma.fields.Dict(
        allow_none=True, metadata={"description": "When failed: problem+json of the failure"}
    )
    links = ma.fields.List(ma.fields.Nested(JobLinkSchema))


def job_body(job) -> dict[str, Any]:
    """A job as the API shows it, with its links."""
    body = jobs.describe(job)
    links = [{"rel": "self", "href": url_for("jobs.read", job_id=job.id)}]
    result_link = (job.result or {}).get("href")
    if job.status == "done" and result_link:
        links.append({"rel": "result", "href": result_link})
    body["links"] = links
    return body


@bp.route("/<job_id>", methods=["GET"])
@bp.response(200, JobSchema)
@problems(bp, 401, 403, 404)
def read(job_id: str):
    """A job's status, progress, and its result or error

    While the job is queued or running the answer has ``Retry-After: 1``."""
    if not JOB_ID.fullmatch(job_id):
        abort(404, message="no such job: job ids are 32 hexadecimal digits")
    with db_session() as session:
        job = jobs.get_job(session, job_id)
        if job is None:
            abort(404, message=f"no job {job_id}")
        require(job.read_role)
        body = job_body(job)
    # While it works, say when to look again (the page is cheap, but not free).
    return body, 200, {"Retry-After": "1"} if body["status"] in ("queued", "running") else {}


@bp.route("", methods=["GET"])
@bp.response(200, JobSchema(many=True))
@problems(bp, 401, 403)
def index():
    """The newest 50 jobs (staff)"""
    require("staff")
    with db_session() as session:
        return [job_body(job) for job in jobs.recent_jobs(session)]


def wants_job(size: int, setting: str) -> bool:
    """Whether a request's work goes to a job: its size is above the ``setting``
    threshold, or the client sent ``Prefer: respond-async``."""
    prefer = request.headers.get("Prefer", "").lower()
    return "respond-async" in prefer or size > int(current_app.config[setting])


def accepted(
    kind: str,
    params: dict[str, Any],
    read_role: str = "viewer",
    payload: bytes | None = None,
    dedupe: bool = False,
) -> Response:
    """Queue a job and answer 202 with its address (``Location``) and its state."""
    principal = current_principal()
    author = principal.name
    if principal is ANONYMOUS:
        # Anonymous callers are told apart by address for the per-author quota, so one
        # cannot take every other's turn; a digest, so no address is stored.
        digest = hashlib.sha256((request.remote_addr or "").encode()).hexdigest()[:12]
        author = f"{principal.name}:{digest}"
    try:
        with db_session() as session:
            job = jobs.submit(
                session, kind, params, author, read_role, payload=payload, dedupe=dedupe
            )
            body = job_body(job)
    except jobs.QueueFull as exc:
        return problem(503, "Service Unavailable", str(exc), headers={"Retry-After": "30"})
    runner = current_app.extensions.get("gridmap_jobs")
    if runner is not None:
        runner.wake()
    location = url_for("jobs.read", job_id=body["id"])
    response = Response(json.dumps(body, ensure_ascii=False), 202, mimetype="application/json")
    response.headers.update({"Location": location, "Preference-Applied": "respond-async"})
    return response


def error_describer(app: Flask):
    """A job's failure as the problem+json its request would have been answered with:
    the app's own error handlers, run on the job's exception."""

    def describe_error(exc: Exception) -> dict[str, Any]:
        with app.test_request_context("/api/v1/jobs"):
            try:
                response = app.make_response(app.handle_user_exception(exc))
            except Exception:
                return jobs.default_error(exc)
        try:
            return json.loads(response.get_data())
        except ValueError:
            return jobs.default_error(exc)

    return describe_error


def start_runner(app: Flask) -> jobs.Runner:
    """Start job runner threads in this process (``gridmap serve``'s job process does)."""
    runner = jobs.Runner(
        app.extensions["gridmap"].engine,
        threads=int(app.config["JOB_THREADS"]),
        describe_error=error_describer(app),
        context=app.app_context,
    ).start()
    app.extensions["gridmap_jobs"] = runner
    return runner


def init_app(app: Flask) -> None:
    """Job settings and the jobs blueprint (the runner is started by the server)."""
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    app.extensions["gridmap"].api.register_blueprint(bp)


def import_job(layer: str, args: dict[str, Any]) -> Response:
    """Queue an import (202): the request as it came, to be replayed by the job.

    The body (a FeatureCollection, or a multipart upload with its form fields) is kept
    in the job until it ends; the job reads and stores it with the import endpoint's
    own code (:func:`api.resources.import_answer`), so its answer is the same.
    """
    params = {
        "layer": layer,
        "args": args,
        "path": request.path,
        "query": request.query_string.decode(),
        "content_type": request.content_type,
    }
    return accepted("import", params, read_role="planner", payload=request.get_data())


@jobs.handler("import")
def _import_job(session: Session, job: jobs.JobContext) -> dict[str, Any]:
    """An import as a background job: its request replayed in the job's app."""
    from api.resources import import_answer  # api.resources imports this module

    params = job.params
    job.progress("importing", 0, 1)
    with current_app.test_request_context(
        params["path"],
        method="POST",
        query_string=params["query"],
        data=job.payload or b"",
        content_type=params["content_type"],
    ):
        answer = import_answer(session, LAYERS[params["layer"]], params["args"], job.author)
    job.progress("importing", 1, 1)
    return answer
