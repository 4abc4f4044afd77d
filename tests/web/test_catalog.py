"""Every page string has a German and an English translation, and the catalogs are current."""

from __future__ import annotations

from babel.messages.pofile import read_po

from services.web import catalog
from services.web.i18n import LOCALES, environment_for, translations


def test_the_pot_file_is_what_pybabel_extract_finds_in_the_templates() -> None:
    fresh = catalog.render_pot(catalog.extract())
    assert catalog.POT.read_bytes() == fresh, (
        "templates changed without updating the catalog: run `python -m services.web.catalog`"
    )


def test_every_msgid_is_translated_into_german_and_english() -> None:
    with catalog.POT.open("rb") as handle:
        template = read_po(handle)
    wanted = {m.id for m in template if m.id}
    assert len(wanted) > 100
    for locale in LOCALES:
        po = catalog.read(locale)
        have = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
        missing = sorted(wanted - set(have))
        assert not missing, f"{locale}: untranslated: {missing[:10]}"


def test_the_compiled_catalogs_match_the_po_files() -> None:
    for locale in LOCALES:
        compiled = translations(locale)
        for message in catalog.read(locale):
            if message.id:
                assert compiled.gettext(message.id) == message.string, (locale, message.id)


def test_placeholders_survive_translation() -> None:
    import re

    pattern = re.compile(r"\{\w+\}|%\(\w+\)s")
    for message in catalog.read("de"):
        if message.id:
            assert sorted(pattern.findall(message.id)) == sorted(pattern.findall(message.string)), (
                message.id
            )


def test_pages_render_in_german_by_default_and_in_english() -> None:
    page = environment_for("de").get_template("visit.html")
    german = page.render(request_path="/visit", district_name="Kreis X", page="visit")
    assert 'lang="de"' in german and "Wartezimmer" in german
    page = environment_for("en").get_template("visit.html")
    english = page.render(request_path="/visit", district_name="Kreis X", page="visit")
    assert 'lang="en"' in english and "Waiting room" in english
