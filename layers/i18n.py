"""The words of every page in Chinese by default and in English on request, from one
message catalogue (``layers/translations``, Flask-Babel).

Messages in the code are English; ``translations/zh/LC_MESSAGES/messages.po`` gives
their Chinese, and its compiled ``.mo`` is committed beside it, so a fresh clone
works after ``pip install -e .`` with no build step. A page is in English when asked
with ``?lang=en`` or when the browser's ``Accept-Language`` prefers English over
Chinese; otherwise in Chinese. Outside a request (``gridmap render``) the words are
Chinese.

To add a message: write it with :func:`gettext` (``_``), add its ``msgid`` and
``msgstr`` to the ``.po`` file, and compile it::

    pybabel compile -d layers/translations
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import flask_babel
from babel.support import NullTranslations, Translations
from flask import Flask, Response, has_request_context, request

#: The folder of the message catalogue.
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
#: The languages pages are written in; the first is the default.
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = LANGUAGES[0]
#: The ``lang`` attribute of a page's ``<html>`` element, per language.
HTML_LANG = {"zh": "zh-CN", "en": "en"}

babel = flask_babel.Babel()


def select_language() -> str:
    """The language of this request: ``lang`` in the query string, else the best of
    the browser's ``Accept-Language``, else Chinese."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    return request.accept_languages.best_match(LANGUAGES, DEFAULT_LANGUAGE)


def init_app(app: Flask) -> None:
    """Bind Flask-Babel to the app with gridmap's catalogue and language choice."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    babel.init_app(app, locale_selector=select_language)
    app.after_request(say_the_language)


def say_the_language(response: Response) -> Response:
    """An HTML page says its language (``Content-Language``) and that it varies with
    the browser's ``Accept-Language``, so no cache hands a Chinese page to an English
    reader or the reverse."""
    if response.mimetype == "text/html":
        response.headers["Content-Language"] = HTML_LANG[language()]
        response.vary.add("Accept-Language")
    return response


@cache
def _default_translations() -> NullTranslations:
    return Translations.load(str(TRANSLATIONS_DIR), [DEFAULT_LANGUAGE])


def language() -> str:
    """The language pages are being written in (``zh`` or ``en``)."""
    if has_request_context():
        return str(flask_babel.get_locale() or DEFAULT_LANGUAGE).split("_")[0]
    return DEFAULT_LANGUAGE


def gettext(message: str, **variables: object) -> str:
    """``message`` in the language of this request (Chinese outside a request), with
    ``%(name)s`` placeholders filled from ``variables``.

    Examples
    --------
    >>> gettext("capacity %(n)s", n=12)  # outside a request
    '容量 12'
    """
    if has_request_context():
        return flask_babel.gettext(message, **variables)
    text = _default_translations().ugettext(message)
    return text % variables if variables else text


_ = gettext
