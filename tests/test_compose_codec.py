"""docker-compose.yml: the codec server, and the UI decoding through it (issue 12, section 2)."""

from __future__ import annotations

from starter.codec_server import ui_origins
from tests.compose_files import (
    INTERPOLATION,
    environment,
    published_ports,
    resolve,
    service,
)


def test_codec_server_listens_where_it_is_published_and_checked() -> None:
    codec = service("codec-server")
    command = codec["command"]
    assert command[:2] == ["dunning", "codec-server"]
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"
    ((ip, _, container),) = published_ports("codec-server")
    assert container == port
    assert ip == "127.0.0.1", "the codec server decodes customer data: loopback only"
    assert f"127.0.0.1:{port}/healthz" in " ".join(codec["healthcheck"]["test"])


def test_codec_server_has_the_apps_settings() -> None:
    # Same keyring as the workers, or the UI could not read what they wrote.
    assert environment("codec-server") == environment("worker")


def test_keys_and_codec_token_have_no_defaults() -> None:
    for key in ("DUNNING_ENCRYPTION_KEYS", "DUNNING_CODEC_TOKEN"):
        match = INTERPOLATION.fullmatch(environment("worker")[key])
        assert match and match.group("braced") == key and match.group("op") == ":?", key


def test_ui_decodes_through_the_published_codec_server() -> None:
    ui = environment("temporal-ui")
    ((_, codec_port, _),) = published_ports("codec-server")
    # The browser calls the endpoint: it must be the address published on this machine.
    assert resolve(ui["TEMPORAL_CODEC_ENDPOINT"]) == f"http://localhost:{codec_port}"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the /login cookie


def test_codec_server_accepts_the_uis_origin() -> None:
    ((_, ui_port, _),) = published_ports("temporal-ui")
    origins = ui_origins(resolve(environment("codec-server")["TEMPORAL_UI_URL"]))
    assert f"http://localhost:{ui_port}" in origins
    assert f"http://127.0.0.1:{ui_port}" in origins
