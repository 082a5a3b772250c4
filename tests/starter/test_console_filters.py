"""The console's open cases can be narrowed to a segment, policy or experiment arm: the same
visibility query as `dunning list --segment/--policy/--variant`."""

from __future__ import annotations

from models.settings import Settings
from models.store import Ledger
from standins.server import free_port
from starter.support.service import list_query
from tests.starter.test_support_console import console, logged_in


def test_the_filters_are_search_attribute_clauses() -> None:
    query = list_query(segment="enterprise", policy="gentle", variant="b")
    assert "DunningSegment = 'enterprise'" in query
    assert "DunningPolicy = 'gentle'" in query and "DunningVariant = 'b'" in query


async def test_the_start_page_keeps_its_filters_and_refuses_a_quote(
    settings: Settings, ledger: Ledger
) -> None:
    http = await logged_in(console(settings, ledger, temporal_address=f"127.0.0.1:{free_port()}"))
    page = (await http.get("/support", params={"segment": "enterprise", "variant": "b"})).text
    assert 'id="filters"' in page
    assert 'name="segment" value="enterprise"' in page and 'name="variant" value="b"' in page
    assert "Open cases are listed from Temporal, which did not answer" in page
    quoted = (await http.get("/support", params={"policy": "x' OR '1'='1"})).text
    assert "Filter refused: policy contains a quote or backslash" in quoted
