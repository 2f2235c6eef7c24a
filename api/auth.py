"""Who is asking: bearer tokens for API clients, a session cookie for the browser.

API clients send ``Authorization: Bearer <token>``. The browser pages (the editor)
never hold a token where page script can read it: ``/signin`` takes a token once and
answers with an HttpOnly, SameSite=Strict session cookie, signed with the app's
secret key, that keeps the token's SHA-256 (never the token), when it was made and a
CSRF token. A session is worth what its token is worth: revoking the token ends it.
Every write made with the cookie (not with a bearer header) must send the session's
CSRF token in the ``X-CSRF-Token`` header, or is refused with 403.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from api.database import db_session
from gridmap.tokens import ANONYMOUS, Principal, hash_token, principal_for, principal_for_hash
from layers.i18n import HTML_LANG, _, language

#: The header (or, for a plain form, the field) that carries a session's CSRF token.
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: Methods that change nothing, so need no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bp = Blueprint("session", __name__)


def _unauthorized(detail: str) -> None:
    raise Unauthorized(description=detail, www_authenticate=WWWAuthenticate("Bearer"))


def _session_principal() -> Principal | None:
    """The principal of the request's session cookie, if it is signed in and fresh.

    A session older than ``SESSION_HOURS`` or whose token was revoked is dropped, and
    the request reads as anonymous (a page still opens; a write is then refused).
    """
    token_hash = session.get("token")
    if not token_hash:
        return None
    if time.time() - session.get("at", 0) > current_app.config["SESSION_HOURS"] * 3600:
        session.clear()
        return None
    with db_session() as db:
        principal = principal_for_hash(db, token_hash)
    if principal is None:
        session.clear()
    return principal


def current_principal() -> Principal:
    """The request's principal: a bearer token's, a signed-in session's, or the
    anonymous viewer when there is neither.

    A malformed, unknown or revoked bearer token is refused with 401 (it is never
    quietly treated as anonymous).
    """
    if "principal" not in g:
        header = request.headers.get("Authorization")
        if header is None:
            g.principal = _session_principal() or ANONYMOUS
        else:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                _unauthorized("Authorization must be 'Bearer <token>'")
            with db_session() as db:
                principal = principal_for(db, token.strip())
            if principal is None:
                _unauthorized("unknown or revoked token")
            g.principal = principal
    return g.principal


def require(role: str) -> Principal:
    """The principal, if it has ``role``; else 401 (anonymous) or 403."""
    principal = current_principal()
    if not principal.may(role):
        if principal is ANONYMOUS:
            _unauthorized(
                f"this needs a {role} token: send Authorization: Bearer <token>, "
                "or sign in at /signin in a browser"
            )
        abort(403, description=f"this needs the {role} role; your token is a {principal.role}")
    return principal


def csrf_token() -> str | None:
    """The signed-in session's CSRF token (for the pages that write), or ``None``."""
    return session.get("csrf") if session.get("token") else None


def check_csrf() -> None:
    """Refuse (403) a write made with the session cookie that does not carry the
    session's CSRF token. Bearer requests need none: no other site can make a
    browser send that header."""
    if request.method in SAFE_METHODS or "Authorization" in request.headers:
        return
    if request.endpoint == "session.sign_in" or not session.get("token"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.mimetype == "application/x-www-form-urlencoded":
        sent = request.form.get(CSRF_FIELD)
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(
            403,
            description=f"缺少或错误的 CSRF 令牌：a write made with the session cookie must "
            f"send the session's CSRF token in the {CSRF_HEADER} header",
        )


def secret_key(path: Path) -> str:
    """The secret that signs session cookies, kept in ``path`` (mode 600), made on first
    use; every worker of one installation reads the same one.

    Parameters
    ----------
    path
        The key file (``SECRET_KEY_FILE``; ``data/secret_key`` by default).
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.write_text(secrets.token_urlsafe(48), encoding="ascii")
        draft.chmod(0o600)
        try:  # a link never replaces a file, so two workers starting at once agree
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="ascii").strip()


def init_app(app: Flask) -> None:
    """Session cookies and CSRF checks on ``app``, and the sign-in pages."""
    app.config.update(
        SESSION_COOKIE_NAME="gridmap_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    key = app.config["SECRET_KEY"]
    if not key:
        try:
            key = secret_key(Path(app.config["SECRET_KEY_FILE"]))
        except OSError as exc:  # a read-only install: the API still serves
            key = secrets.token_urlsafe(48)
            app.logger.warning(
                "no session key file (%s): browser sessions last until this worker stops; "
                "set GRIDMAP_SECRET_KEY",
                type(exc).__name__,
            )
    app.secret_key = key
    app.before_request(check_csrf)
    app.register_blueprint(bp)


# -- the sign-in page -----------------------------------------------------------------

# Its words come from the pages' message catalogue (layers/i18n.py): Chinese, or English
# on request.
_PAGE = """<!doctype html>
<html lang="{{ lang }}"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ _("gridmap: sign in") }}</title>
<style>body { font: 15px/1.6 sans-serif; max-width: 34em; margin: 3em auto; padding: 0 1em }
.bad { color: #b2182b }</style>
<h1>{{ _("gridmap: sign in") }}</h1>
{% if who %}<p>{{ _("signed in:") }} {{ who.name }}（{{ who.role }}）</p>
<form method="post" action="{{ url_for('session.sign_out') }}">
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next }}">
<button type="submit">{{ _("sign out") }}</button></form>{% endif %}
{% if message %}<p class="bad" role="alert">{{ message }}</p>{% endif %}
<form method="post" action="{{ url_for('session.sign_in') }}">
<p><label>{{ _("token") }} <input name="token" type="password" size="48" autocomplete="off"
 required autofocus></label></p>
<input type="hidden" name="next" value="{{ next }}">
<p><button type="submit">{{ _("sign in") }}</button></p>
</form>
<p><small>{{ _("The token is sent once; the browser keeps only an HttpOnly session cookie "
"that no page script can read.") }}</small></p>
<p><a href="/">{{ _("Home") }}</a></p>
</html>
"""


def _next_page() -> str:
    """Where to go after signing in or out: a path on this site, never another site."""
    target = request.values.get("next", "")
    # Browsers drop tabs and newlines from a URL, so "/\t/evil.example" is "//evil.example".
    control = any(ord(c) < 0x20 or c == "\x7f" for c in target)
    if control or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("session.sign_in_page")
    return target


def _page(message: str = "", status: int = 200) -> Response:
    principal = current_principal()
    who = None if principal is ANONYMOUS else principal
    html = render_template_string(
        _PAGE,
        who=who,
        csrf=csrf_token(),
        next=_next_page(),
        message=message,
        lang=HTML_LANG[language()],
    )
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/signin")
def sign_in_page() -> Response:
    """The sign-in form (and who is signed in now)."""
    return _page()


@bp.post("/signin")
def sign_in() -> Response:
    """Take a token once and answer with the session cookie; then go to ``next``.

    Refused (403) when the form was posted from another site's page, so no site can
    sign a visitor in under someone else's token.
    """
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        abort(403, description="sign in from gridmap's own sign-in page")
    token = request.form.get("token", "").strip()
    with db_session() as db:
        principal = principal_for(db, token) if token else None
    if principal is None:
        return _page(_("unknown or revoked token"), status=401)
    session.clear()
    session.update(token=hash_token(token), csrf=secrets.token_urlsafe(32), at=int(time.time()))
    return redirect(_next_page(), code=303)


@bp.post("/signout")
def sign_out() -> Response:
    """End the session (a write: needs the session's CSRF token); a form goes on to
    ``next``, a script's request gets 204."""
    session.clear()
    if request.mimetype != "application/x-www-form-urlencoded":
        return Response(status=204)
    return redirect(_next_page(), code=303)
