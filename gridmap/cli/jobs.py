"""``gridmap job``: background jobs of the web server (list, show, wait with a progress bar)."""

from __future__ import annotations

import json
import sys

import click
from tqdm import tqdm

from gridmap.cli.common import engine, transaction


def _line(job: dict) -> str:
    progress = job["progress"]
    amount = f"{progress['done']}/{progress['total']}" if progress["total"] else "-"
    return (
        f"{job['id']}  {job['kind']:<9} {job['status']:<8} {progress['step'] or '':<10} "
        f"{amount:>13}  {(job['created_at'] or '')[:19]}"
    )


@click.group()
def job() -> None:
    """Background jobs: large imports, city-wide coverage, large redraws."""


@job.command(name="list")
def job_list() -> None:
    """List the newest jobs."""
    from gridmap import jobs

    with transaction() as session:
        rows = [jobs.describe(j) for j in jobs.recent_jobs(session)]
    for row in rows:
        click.echo(_line(row))


def _show(job: dict) -> None:
    click.echo(_line(job))
    if job["status"] == "done":
        click.echo(json.dumps(job["result"], ensure_ascii=False, indent=2))
    elif job["status"] == "failed":
        click.echo(f"failed: {job['error'].get('detail')}", err=True)
        for item in (job["error"].get("errors") or [])[:50]:
            click.echo(f"  {item.get('reason')}", err=True)


@job.command(name="show")
@click.argument("job_id")
def job_show(job_id: str) -> None:
    """Print a job's state, and its result or error."""
    from gridmap import jobs

    with transaction() as session:
        found = jobs.get_job(session, job_id)
        if found is None:
            raise click.ClickException(f"no job {job_id}")
        answer = jobs.describe(found)
    _show(answer)


@job.command(name="wait")
@click.argument("job_id")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit 2).")
def job_wait(job_id: str, timeout: float | None) -> None:
    """Wait for a job with a progress bar; print its result (exit 1 when it failed)."""
    from gridmap import jobs

    bar = tqdm(total=None, desc=job_id[:8], unit=" items", disable=None, leave=False)

    def show(state) -> None:
        if state.total is not None and bar.total != state.total:
            bar.reset(total=state.total)
        bar.set_description(f"{job_id[:8]} {state.step or state.status}")
        bar.update(max(0, state.done - bar.n))

    try:
        final = jobs.wait_for(engine(), job_id, on_progress=show, timeout_s=timeout)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    except TimeoutError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    finally:
        bar.close()
    answer = jobs.describe(final)
    _show(answer)
    if final.status == "failed":
        sys.exit(1)
