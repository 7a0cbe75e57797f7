"""The languages of the client-facing pages and answers: en-US, en-CA and fr-CA, from one gettext
catalogue (``firmpay/locale/<ll_CC>/LC_MESSAGES/messages.po``, compiled to ``.mo``; source strings
are en-US). ``python -m local.catalogue --write`` extracts, updates and compiles it; a unit test
fails when a string has no French translation or a ``.mo`` is stale.

Which language:
- a page (pay page, mandate, method removal) offers the firm's languages: US firms en-US; Canadian
  firms en-CA and fr-CA. A French-language firm's page opens in French (Quebec's Charter of the
  French Language); other firms' pages follow the browser's ``Accept-Language`` among the offered
  ones; ``?lang=`` (the page's language switch) wins over both;
- the API answers a page's scripts in the language the page is in: the scripts send it as
  ``Accept-Language`` (any of the three; without the header, en-US).

The request's preferences live in a context variable set by the API edge for the time of one
request (``firmpay.api``), so use cases and presenters translate without a language parameter
threaded through every call, as Django's and Flask-Babel's ``gettext`` do. Only the standard
library's ``gettext`` is imported, and only when a translated string is asked for: Babel is a
build and test tool here (its import and data cost ~35 ms, see docs/decisions.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import gettext as stdlib_gettext

    from firmpay.models.ledger import Firm

Language = Literal["en-US", "en-CA", "fr-CA"]
LANGUAGES: tuple[Language, ...] = ("en-US", "en-CA", "fr-CA")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# The name of each language in itself, for the language switch.
AUTONYMS: Mapping[Language, str] = {"en-US": "English", "en-CA": "English", "fr-CA": "Français"}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it here (it is translated where shown)."""
    return message


@dataclass(frozen=True)
class Preferences:
    """What one request says about its language: ``Accept-Language`` and the ``lang`` query parameter."""

    accept_language: str = ""
    requested: str = ""


_NO_PREFERENCES = Preferences()
_preferences: ContextVar[Preferences | None] = ContextVar("firmpay_language_preferences", default=None)
_chosen: ContextVar[Language | None] = ContextVar("firmpay_language", default=None)


@contextmanager
def request_preferences(preferences: Preferences) -> Iterator[None]:
    """Within: the current request's language preferences (set by the API edge)."""
    token = _preferences.set(preferences)
    try:
        yield
    finally:
        _preferences.reset(token)


@contextmanager
def language(chosen: Language) -> Iterator[None]:
    """Within: translate into ``chosen`` (a page renders in the language negotiated for its firm)."""
    token = _chosen.set(chosen)
    try:
        yield
    finally:
        _chosen.reset(token)


def active_language() -> Language | None:
    """The language strings are translated into now: the page's, else the one the request's
    ``Accept-Language`` names; None outside any request (English source strings)."""
    chosen = _chosen.get()
    if chosen is not None:
        return chosen
    preferences = _preferences.get() or _NO_PREFERENCES
    if not preferences.accept_language:
        return None
    return best_match(preferences.accept_language, LANGUAGES)


def offered_languages(firm: Firm) -> tuple[Language, ...]:
    """The firm's languages, its own first: US firms en-US; Canadian firms en-CA and fr-CA."""
    if firm.country != "CA":
        return ("en-US",)
    return ("fr-CA", "en-CA") if firm.language == "fr" else ("en-CA", "fr-CA")


def page_language(firm: Firm | None, preferences: Preferences | None = None) -> Language:
    """The language a page opens in (see the module's docstring)."""
    preferences = preferences or _preferences.get() or _NO_PREFERENCES
    offered = offered_languages(firm) if firm is not None else LANGUAGES
    for candidate in offered:
        if candidate == preferences.requested:
            return candidate
    if firm is not None and firm.language == "fr":
        return "fr-CA"
    return best_match(preferences.accept_language, offered) or offered[0]


_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")


def accepted(header: str) -> list[str]:
    """The language ranges of an ``Accept-Language`` header, most wanted first (RFC 9110 12.5.4)."""
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        found = _RANGE.match(part)
        if found is None:
            continue
        quality = float(found.group(2)) if found.group(2) else 1.0
        if quality > 0:
            ranges.append((-quality, position, found.group(1).lower()))
    return [name for _, _, name in sorted(ranges)]


def best_match(header: str, offered: Sequence[Language]) -> Language | None:
    """The offered language the header wants most: the same tag, else the same language
    (``fr`` or ``fr-FR`` -> fr-CA, ``en-GB`` -> the firm's English); None when none fits."""
    for wanted in accepted(header or ""):
        if wanted == "*":
            return offered[0]
        for candidate in offered:
            if candidate.lower() == wanted:
                return candidate
        primary = wanted.split("-")[0]
        for candidate in offered:
            if candidate.lower().split("-")[0] == primary:
                return candidate
    return None


@lru_cache(maxsize=4)
def translations(chosen: Language) -> stdlib_gettext.NullTranslations:
    """The compiled catalogue of ``chosen`` (en-US is the source language: no catalogue)."""
    import gettext as stdlib_gettext

    if chosen == "en-US":
        return stdlib_gettext.NullTranslations()
    return stdlib_gettext.translation(DOMAIN, LOCALE_DIR, languages=[chosen.replace("-", "_")])


def gettext(message: str) -> str:
    """``message`` in the active language (itself outside a request, or in en-US)."""
    chosen = active_language()
    return translations(chosen).gettext(message) if chosen else message


def ngettext(singular: str, plural: str, count: int) -> str:
    chosen = active_language()
    if chosen:
        return translations(chosen).ngettext(singular, plural, count)
    return singular if count == 1 else plural


_ = gettext
