"""Translations: one Jinja2 environment per locale, German by default, English second.

Strings are marked with ``_()`` / ``{% trans %}`` in templates; ``pybabel extract``
collects them into ``locale/messages.pot`` (``python -m services.web.catalog``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from babel.support import NullTranslations, Translations
from fastapi import Request
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOCALE_DIR = HERE / "locale"
DOMAIN = "messages"
LOCALES = ("de", "en")
DEFAULT_LOCALE = "de"
LANG_COOKIE = "bb_lang"
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}

# Operators may override any template (imprint.html, privacy.html, accessibility.html,
# partials/logo.html …) by putting a file of the same name into this folder.
OVERRIDE_ENV = "BB_WEB_TEMPLATE_DIR"


def negotiate(request: Request) -> str:
    """``?lang=`` first, then the cookie the switch set, then German."""
    for wanted in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if wanted and wanted.lower()[:2] in LOCALES:
            return wanted.lower()[:2]
    return DEFAULT_LOCALE


def translations(locale: str) -> NullTranslations:
    return Translations.load(str(LOCALE_DIR), [locale], domain=DOMAIN)


@cache
def environment(locale: str, override: str | None = None) -> Environment:
    loaders = [FileSystemLoader(override)] if override else []
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    env.globals["other_locales"] = [loc for loc in LOCALES if loc != locale]
    env.globals["language_names"] = LANGUAGE_NAMES
    return env


def environment_for(locale: str) -> Environment:
    return environment(locale, os.environ.get(OVERRIDE_ENV) or None)
