"""The gettext catalogs' keys as tests compare them: what `pybabel extract` finds with a domain's
mapping file at the repository root, and what the domain's `.po` holds, as (context, msgid)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from models.i18n import LOCALES_DIR

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[str | None, str]

# Domain → the mapping file its catalogs are extracted with (`pybabel extract -F …`).
CONFIGS = {
    "messages": "babel.cfg",
    "pay": "babel-pay.cfg",
    "predunning": "babel-predunning.cfg",
}


def key(context: str | None, msgid: str | tuple[str, ...] | list[str]) -> Key:
    # A plural entry's msgid is (singular, plural); the singular names it.
    return (context, msgid if isinstance(msgid, str) else msgid[0])


def extracted(domain: str = "messages") -> set[Key]:
    """What `pybabel extract -F <the domain's mapping file> .` finds."""
    name = CONFIGS[domain]
    with (ROOT / name).open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, name)
    found = extract_from_dir(str(ROOT), method_map, options_map)
    return {key(context, msgid) for _, _, msgid, _, context in found}


def catalog(locale: str, domain: str = "messages") -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
        return read_po(po, locale=locale, domain=domain)


def catalog_keys(locale: str, domain: str = "messages") -> set[Key]:
    return {key(m.context, m.id) for m in catalog(locale, domain) if m.id}
