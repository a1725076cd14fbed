"""Settings an admin saves through one app process are used by another app process on the same PostgreSQL."""

from __future__ import annotations

import time

import pytest

from tests.fake_ollama import FakeOllama
from tests.test_multiprocess import Cluster, cluster, fake, signed_in, wait_for  # noqa: F401  (fixtures)
from tests.ui.conftest import free_port
from tests.ui.settings_form import save_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_setting_saved_through_one_app_process_is_reported_by_the_other_within_ten_seconds(
    cluster: Cluster, fake: FakeOllama  # noqa: F811
) -> None:
    port_a, port_b = free_port(), free_port()
    cluster.start("app-a", "serve", "--no-browser", "--no-worker", "--port", str(port_a))
    cluster.start("app-b", "serve", "--no-browser", "--no-worker", "--port", str(port_b))

    with signed_in(port_a, cluster) as app_a, signed_in(port_b, cluster) as app_b:
        def reported() -> str:
            description: str = app_b.get("/v1/models").json()["data"][0]["description"]
            return description

        assert reported().endswith(f"written by Ollama gemma3:270m at {fake.url}")
        saved = save_settings(app_a, {"ollama-model": "qwen3:4b"})
        assert saved["success"], saved
        began = time.monotonic()

        wait_for("app b to report the model saved through app a",
                 lambda: reported().endswith(f"written by Ollama qwen3:4b at {fake.url}"), 10, cluster)
        assert time.monotonic() - began < 10
        assert app_a.get("/v1/models").json()["data"][0]["description"].endswith(f"Ollama qwen3:4b at {fake.url}")
    assert all(p.poll() is None for p, _ in cluster.procs), cluster.logs()
