"""The pages' message catalogue (firmpay/i18n.py): extract, update, compile, check. Babel does the work.

What goes in: every ``_()``/``gettext`` of the page templates (``web/templates``, Jinja2's i18n
extension) and of the package's Python, every ``N_()`` (strings translated where they are shown),
and the first argument of every raise of a ``firmpay.errors`` class (``PayableClosed("...")``):
those messages reach clients in their language.

``python -m local.catalogue --write`` rewrites ``locale/<ll_CC>/LC_MESSAGES/messages.po`` from the
sources (new strings arrive untranslated, removed ones leave) and compiles each ``.mo`` next to it;
both are committed, so ``sam build`` ships the ``.mo`` with the layer. ``python -m local.catalogue``
(and tests/unit/test_i18n_catalogue.py) only checks: the ``.po`` files list exactly the strings of
the sources, fr-CA translates every one with the same placeholders, and each ``.mo`` is what its
``.po`` compiles to. en-CA's ``.po`` translates only where Canadian English differs from the
en-US source; an empty entry means "as in en-US".
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from firmpay import errors
from firmpay.i18n import DOMAIN, LOCALE_DIR
from local.template import ROOT

PACKAGE = ROOT / "layers" / "firmpay" / "firmpay"
# The catalogues kept; en-US is the source language. fr-CA must translate every string.
LOCALES = ("en_CA", "fr_CA")
COMPLETE = ("fr_CA",)
# Modules behind the firm API only (IAM-signed, for the firm's developers): their messages stay
# in English, like the API's documentation.
FIRM_API_ONLY = (
    "payments/autopay.py",
    "payments/firm_admin.py",
    "payments/mandates.py",
    "payments/plans.py",
    "payments/refunds.py",
    "payments/webhooks.py",
    "emails/**.py",
)
METHODS = [
    ("web/templates/**.html", "jinja2"),
    *((pattern, "ignore") for pattern in FIRM_API_ONLY),
    ("**.py", "python"),
]
OPTIONS = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "1", "lstrip_blocks": "1"}}
_PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def keywords() -> dict[str, object]:
    """gettext's names, plus each error class: the message a raise gives is shown to clients."""
    found: dict[str, object] = dict(DEFAULT_KEYWORDS)
    for error in errors.ERROR_CLASSES:
        found[error.__name__] = None
    return found


def extract() -> Catalog:
    """The catalogue template: every string of the sources, with where it comes from."""
    template = Catalog(project="FirmPay", domain=DOMAIN, charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, METHODS, OPTIONS, keywords(), comment_tags=("NOTE:",), strip_comment_tags=True
    ):
        if isinstance(message, str) and message:
            template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(locale: str) -> Catalog:
    path = po_path(locale)
    if not path.is_file():
        return Catalog(locale=locale, domain=DOMAIN, project="FirmPay", fuzzy=False)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def written(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, omit_header=False, sort_output=True, ignore_obsolete=True)
    return buffer.getvalue()


def write() -> None:
    template = extract()
    for locale in LOCALES:
        catalog = read(locale)
        dates = catalog.creation_date, catalog.revision_date
        catalog.update(template, no_fuzzy_matching=True)
        if po_path(locale).is_file():  # the header keeps its dates: no churn in the diffs
            catalog.creation_date, catalog.revision_date = dates
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(written(catalog))
        path.with_suffix(".mo").write_bytes(compiled(read(locale)))
        print(f"{path.relative_to(ROOT)}: {sum(1 for m in catalog if m.id)} strings")


def problems() -> list[str]:
    """What is wrong with the committed catalogues (empty when they are complete and compiled)."""
    found: list[str] = []
    wanted = {message.id for message in extract() if message.id}
    for locale in LOCALES:
        catalog = read(locale)
        have = {message.id for message in catalog if message.id}
        found += [f"{locale}: not in the .po (run python -m local.catalogue --write): {m!r}" for m in wanted - have]
        found += [f"{locale}: no longer in the sources: {m!r}" for m in have - wanted]
        for message in catalog:
            if not message.id:
                continue
            if message.fuzzy:
                found.append(f"{locale}: fuzzy: {message.id!r}")
            if not message.string:
                if locale in COMPLETE:
                    found.append(f"{locale}: not translated: {message.id!r}")
                continue
            source, translated = _PLACEHOLDER.findall(str(message.id)), _PLACEHOLDER.findall(str(message.string))
            if sorted(source) != sorted(translated):
                found.append(f"{locale}: placeholders {translated} instead of {source}: {message.id!r}")
        mo = po_path(locale).with_suffix(".mo")
        if not mo.is_file() or mo.read_bytes() != compiled(catalog):
            found.append(f"{locale}: {mo.name} is not what the .po compiles to (run python -m local.catalogue --write)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the .po files and compile the .mo files")
    if parser.parse_args().write:
        write()
    wrong = problems()
    for line in wrong:
        print(line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
