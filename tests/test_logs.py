"""No personal data and no token in any log line, whatever fails.

Failures are provoked on a real database with planted personal data (a worker's
name and phone) and a real token in the Authorization header and the query string:
a column narrower than the app expects (the driver's error then carries the
statement and its values), a trigger whose error quotes the whole row (as a check
constraint's ``Failing row contains (...)`` does), and the 200-character worker code
of issue 12. Everything logged, through pytest's capture and through a real
gunicorn's stdout and stderr, is searched for the planted values.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
from sqlalchemy import text

from gridmap.logs import safe_traceback, scrub
from tests.conftest import serving
from tests.helpers import bearer

NAME = "张三丰PLANTEDNAME"
PHONE = "13912345678"
OTHER_PHONE = "028-PLANTED-8765"


def _secrets(token: str) -> list[str]:
    return [NAME, quote(NAME), PHONE, OTHER_PHONE, token]


def _break_workers(engine) -> None:
    """Make worker writes fail inside the database, the way unforeseen errors do."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE workers ALTER COLUMN phone TYPE varchar(5)"))
        conn.execute(
            text(
                "CREATE FUNCTION refuse_named() RETURNS trigger AS $$ BEGIN "
                "IF NEW.code = 'TRIGGER' THEN RAISE EXCEPTION 'refused row %', NEW; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                "CREATE TRIGGER refuse_named BEFORE INSERT ON workers "
                "FOR EACH ROW EXECUTE FUNCTION refuse_named()"
            )
        )


def _worker(code: str, phone: str) -> dict:
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {"code": code, "name": NAME, "phone": phone},
    }


FAILING_WRITES = [
    ("W1", PHONE),  # value too long for the narrowed column: a DataError
    ("W2", OTHER_PHONE),
    ("TRIGGER", "1"),  # the trigger's error quotes the row
    ("X" * 200, PHONE),  # issue 12's 200-character code
]


def test_unhandled_database_errors_log_no_personal_data(client, tokens, engine, caplog):
    _break_workers(engine)
    token = tokens["planner"]
    caplog.set_level(logging.DEBUG)
    statuses = []
    for code, phone in FAILING_WRITES:
        response = client.post(
            f"/api/v1/workers?reason={quote(NAME)}",
            headers=bearer(token),
            json=_worker(code, phone),
        )
        statuses.append(response.status_code)
        assert response.mimetype == "application/problem+json"
        assert PHONE not in response.get_data(as_text=True)
    assert statuses.count(500) >= 3, statuses  # the failures really happened
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled error on POST /api/v1/workers" in logged
    assert "SQLSTATE 22001" in logged  # what failed is still named: string too long
    assert "Traceback" in logged
    for secret in _secrets(token):
        assert secret not in logged, secret
    assert all(r.exc_info is None for r in caplog.records)


def test_a_real_server_logs_no_personal_data_or_token(db_url, tokens, engine, tmp_path):
    _break_workers(engine)
    token = tokens["planner"]
    log = tmp_path / "server.log"
    with log.open("wb") as output, serving(db_url, output) as base:
        for code, phone in FAILING_WRITES:
            request = urllib.request.Request(
                f"{base}/api/v1/workers?reason={quote(NAME)}",
                data=json.dumps(_worker(code, phone)).encode(),
                headers={**bearer(token), "Content-Type": "application/json"},
                method="POST",
            )
            with pytest.raises(urllib.error.HTTPError) as failed:
                urllib.request.urlopen(request, timeout=30)
            assert failed.value.code in (422, 500)
        # A bad token in the header, and tokens in query strings (which are refused).
        for url, headers in (
            (f"{base}/api/v1/workers", {"Authorization": f"Bearer {token}x"}),
            (f"{base}/api/v1/workers?access_token={token}", bearer(token)),
            (f"{base}/maps/grids?token={token}", {}),
        ):
            try:
                urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
            except urllib.error.HTTPError:
                pass
    written = log.read_text(errors="replace")
    assert "POST /api/v1/workers" in written  # the access log was written
    assert "Traceback" in written  # and the errors were
    for secret in _secrets(token):
        assert secret not in written, secret


def test_scrub_and_safe_traceback():
    line = f"GET /a?token=abc&x=1 HTTP/1.1 Authorization: Bearer abc.def {PHONE} 110101199003074517"
    assert scrub(line) == (
        "GET /a?token=[redacted]&x=[redacted] HTTP/1.1 Authorization: Bearer [redacted] "
        "[redacted] [redacted]"
    )
    try:
        try:
            raise KeyError(NAME)
        except KeyError as inner:
            raise ValueError(f"{NAME} {PHONE}") from inner
    except ValueError as exc:
        shown = safe_traceback((type(exc), exc, exc.__traceback__))
    assert "builtins.KeyError" in shown and "builtins.ValueError" in shown
    assert "direct cause" in shown
    assert NAME not in shown and PHONE not in shown
