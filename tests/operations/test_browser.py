"""A real headless browser (Debian chromium driven by playwright) on the dashboard page and on the Dagster UI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import dagster as dg
import pytest

from speech_assets.operations.dashboard import build_dashboard
from speech_assets.settings import PROJECT_ROOT
from tests.operations.conftest import closed_port
from tests.operations.test_dashboard import synthetic

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def test_dashboard_renders_in_a_browser_with_its_plots_and_fetches_nothing_else(tmp_path, browser):
    (tmp_path / "ops_dashboard.html").write_text(build_dashboard(synthetic()), encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    page = browser.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        page.goto(f"{origin}/ops_dashboard.html", wait_until="load")
        assert page.get_by_role("heading", name="Operations: asr").is_visible()
        for heading in ("WER per slice over model versions", "Drift over batches", "Canary decisions",
                        "Service: latency and errors"):
            assert page.get_by_role("heading", name=heading).is_visible(), heading
        table = page.locator("table.wer")
        assert table.is_visible()
        assert "12.34% [11.0%, 14.0%]" in table.inner_text()
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : -1)")
        assert len(widths) == 2 and all(w > 0 for w in widths), widths
        assert page.locator("img").first.is_visible()
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    # the page itself and nothing else: its plots are data URIs, no script or font is fetched from anywhere
    assert [u for u in requested if not u.startswith("data:")] == [f"{origin}/ops_dashboard.html"]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout_s:.0f} s")


@pytest.mark.slow  # starts dagster-webserver, which loads the whole code location (~15-20 s on 2 cores)
def test_dagster_ui_shows_the_asset_graph_and_a_materializations_metadata(tmp_path, monkeypatch, browser):
    from speech_assets.defs.operations.assets import ops_dashboard
    from speech_assets.defs.serving.resources import ServingResource
    from speech_assets.defs.storage.resources import VersionStoreResource

    dagster_home, home = tmp_path / "dagster_home", tmp_path / "home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SPEECH_ASSETS_HOME", str(home))
    # The cheapest asset with real metadata: the dashboard of an empty store and no service (about a second).
    # It runs in a thread of its own: this one carries playwright's event loop, which the run must not inherit.
    def materialize():
        with dg.DagsterInstance.get() as instance:
            return dg.materialize([ops_dashboard], instance=instance, resources={
                "store": VersionStoreResource(local_root=str(home / "store")),
                "serving": ServingResource(home=str(home / "serving")),
            })

    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(materialize).result()
    assert result.success
    metadata = result.asset_materializations_for_node("ops_dashboard")[0].metadata
    size, path = metadata["size_bytes"].value, metadata["path"].value
    assert Path(path).is_file() and Path(path).stat().st_size == size

    port = closed_port()
    log = open(tmp_path / "webserver.log", "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=PROJECT_ROOT, env={**os.environ, "DAGSTER_HOME": str(dagster_home), "SPEECH_ASSETS_HOME": str(home)},
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _wait_http(f"{base}/server_info", proc, 60)
        page.goto(f"{base}/locations/speech_assets/asset-groups/operations")
        _dismiss_welcome(page)
        # the group's lineage graph: the dashboard's node and the upstream assets it reads
        for name in ("ops_dashboard", "registered_model", "drift_report"):
            page.get_by_text(name, exact=True).first.wait_for(state="visible", timeout=30_000)

        page.goto(f"{base}/assets/ops_dashboard")
        row = page.locator("tr", has_text="size_bytes").first
        row.wait_for(state="visible", timeout=30_000)
        assert str(size) in row.inner_text()
        path_row = page.locator("tr", has=page.get_by_text("path", exact=True)).first
        assert path in path_row.inner_text()
        # the markdown summary, rendered (the UI renders metadata after the table: wait, on a loaded machine)
        page.get_by_text("no service is running").first.wait_for(state="visible", timeout=30_000)
    except Exception:
        page.screenshot(path=str(tmp_path / "dagster_ui.png"))
        sys.stderr.write((tmp_path / "webserver.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        page.close()
        _stop(proc)
        log.close()


def _dismiss_welcome(page) -> None:
    """The UI greets a new browser profile with a newsletter dialog over the page; skip it if it shows."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=5_000)
    except Exception:
        return  # not shown (already dismissed in this browser context, or another UI version)
    skip.click()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the webserver and the code server it started
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
