"""Maintain the message catalogs: ``python -m services.web.catalog [extract|update|compile|check]``.

``extract`` writes ``locale/messages.pot`` from the templates, ``update`` merges it into
the ``de`` and ``en`` catalogs, ``compile`` writes the ``.mo`` files, ``check`` lists
what is untranslated (exit 1 if anything is).
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from services.web.i18n import DOMAIN, LOCALE_DIR, LOCALES, TEMPLATES

POT = LOCALE_DIR / f"{DOMAIN}.pot"
METHOD_MAP = [("**.html", "jinja2")]
OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """What the templates ask to translate now (no dates, so it compares stably)."""
    catalog = Catalog(project="buergerbuero", version="1", charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        str(TEMPLATES), METHOD_MAP, OPTIONS, strip_comment_tags=True
    ):
        catalog.add(
            message,
            None,
            [(f"templates/{filename}", lineno)],
            auto_comments=comments,
            context=context,
        )
    return catalog


def render_pot(catalog: Catalog) -> bytes:
    out = BytesIO()
    write_po(out, catalog, omit_header=True, sort_output=True, width=100)
    return out.getvalue()


def read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.exists():
        return Catalog(locale=locale, project="buergerbuero", fuzzy=False)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def write(locale: str, catalog: Catalog) -> None:
    path = po_path(locale)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, omit_header=True, sort_output=True, width=100)


def update(template: Catalog) -> None:
    for locale in LOCALES:
        catalog = read(locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        if locale == "en":  # the msgids are English: the English catalog repeats them
            for message in catalog:
                if message.id and not message.string:
                    message.string = message.id
        write(locale, catalog)


def compile_all() -> None:
    for locale in LOCALES:
        catalog = read(locale)
        with (po_path(locale).with_suffix(".mo")).open("wb") as handle:
            write_mo(handle, catalog)


def untranslated(locale: str) -> list[str]:
    return [str(m.id) for m in read(locale) if m.id and (not m.string or m.fuzzy)]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "all"
    if command in ("extract", "all"):
        POT.write_bytes(render_pot(extract()))
    if command in ("update", "all"):
        update(extract())
    if command in ("compile", "all"):
        compile_all()
    if command in ("check", "all"):
        missing = {loc: untranslated(loc) for loc in LOCALES}
        for loc, ids in missing.items():
            for msgid in ids:
                print(f"{loc}: untranslated: {msgid!r}")
        return 1 if any(missing.values()) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
