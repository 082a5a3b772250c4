"""`dunning list --ui-links`: every ops view is a query the server accepts, as a UI link."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from models.settings import Settings
from starter.cli import app
from starter.support.ui_links import named_queries, ui_links


async def test_every_named_view_is_a_valid_visibility_query(dev_env: WorkflowEnvironment) -> None:
    for name, query in named_queries(customer="cus_links").items():
        # The server parses the query (a bad one is an RPCError), whether or not it matches.
        [w async for w in dev_env.client.list_workflows(query, limit=1)]
        assert "CustomerId = 'cus_links'" in query, name


def test_links_open_the_filtered_list_in_the_ui(settings: Settings) -> None:
    custom = settings.model_copy(
        update={"temporal_ui_url": "http://ui.test:8233/", "temporal_namespace": "billing"}
    )
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    links = ui_links(custom, now=now)
    queries = named_queries(now)
    assert set(links) == set(queries)
    for name, url in links.items():
        parts = urlsplit(url)
        assert (parts.netloc, parts.path) == ("ui.test:8233", "/namespaces/billing/workflows")
        assert parse_qs(parts.query)["query"] == [queries[name]]
    assert "NextActionAt <= '2026-11-29T12:00:00+00:00'" in queries["Next action within 24 h"]


def test_cli_prints_each_view_with_its_link() -> None:
    result = CliRunner().invoke(app, ["list", "--ui-links"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "Open cases" in result.output and "Paused (waiting for support)" in result.output
    assert "/workflows?query=WorkflowType%20%3D%20%27DunningWorkflow%27" in result.output
