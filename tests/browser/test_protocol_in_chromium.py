"""The node:test suites of tests/js/ run again inside real Chromium.

Node's Web Crypto is OpenSSL; a browser's is not (Chromium's is BoringSSL), and the
browser is where src/securechat/web/protocol/ actually runs. So each suite
(protocol vectors, Wycheproof, unit tests) is loaded unchanged into headless Chromium
(/usr/bin/chromium, never a downloaded browser), from a throwaway HTTP server on a
free 127.0.0.1 port (Web Crypto needs a secure context) that serves the repository's
web code, tests and test data read-only. tests/browser/suite_runner.html maps the
suites' ``node:test``, ``node:assert/strict`` and ``node:fs`` imports to the small
shims in tests/browser/shims/ and installs a minimal ``Buffer``.

For every suite the same suite is also run with ``node --test`` (with a JSON-lines
reporter), and the test requires: the page ran in Chrome, exactly the tests Node runs
(the same multiset of full test names, hence the same count; nothing may silently not
run), and no failure except those in ``KNOWN_FAILURES``. Each of those is a real
difference between Chromium and Node, with its reason; each must still fail, with the
error and at the place written there, so the list cannot go stale.

Chromium runs from a thread of its own (see ``Chromium``), so this module works beside
the session-wide sync Playwright of tests/browser/conftest.py.

Node.js 20 or later must be on PATH, as for tests/js/test_node_suite.py.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPO = Path(__file__).resolve().parents[2]
# Every protocol suite (v1 and v2, vectors and units: tests/js/protocol*.test.mjs), Wycheproof,
# and the v2 client core's decisions (v1's read PROTOCOL.md, which the page does not serve).
SUITES = (
    "wycheproof",
    "decisions_v2",
    *sorted(p.name.removesuffix(".test.mjs") for p in (REPO / "tests/js").glob("protocol*.test.mjs")),
)
# What the page needs: the modules under test, the suites, their data, the page and shims.
SERVED_PREFIXES = ("/src/securechat/web/", "/tests/js/", "/tests/data/", "/tests/browser/")
PAGE_TIMEOUT_MS = 45_000
NODE_TIMEOUT_SECONDS = 60

# A node:test reporter that prints one JSON object per finished test or suite.
NODE_REPORTER = """\
export default async function* reporter(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { name, nesting, details, skip, todo } = event.data;
    const status = skip !== undefined ? "skip" : todo !== undefined ? "todo" : event.type.slice(5);
    yield JSON.stringify({ name, nesting, status, type: details?.type ?? "test" }) + "\\n";
  }
}
"""


@dataclass(frozen=True)
class KnownFailure:
    """A test that fails in Chromium for a reason outside the code under test."""

    error: str  # a regular expression the reported error must match from its start
    reason: str
    call: str | None = None  # text of the tests/js source line that must have thrown


AES_192 = KnownFailure(
    # The wrapper's RangeError, or the platform's own error where a test calls Web Crypto
    # directly as its reference (the "IV ... refused" vectors).
    error=r"(RangeError: this platform does not support|OperationError:) 192-bit AES keys( are not supported)?$",
    reason=(
        "Chromium's Web Crypto refuses 192-bit AES keys in importKey (Node's, like pyca, "
        "takes them); the wrapper turns the platform's OperationError into a RangeError. "
        "Protocol v1 uses 256-bit keys only, so nothing the protocol does is affected "
        "(PROTOCOL.md 11 notes the difference)."
    ),
)

UNITS_KNOWN_FAILURES = {
    "private keys > a PKCS#8 with data after it does not import (OpenSSL alone would ignore it)": KnownFailure(
        error=r"DataError: ",
        reason=(
            "the test's control: Node (OpenSSL) imports a PKCS#8 with a byte after it, "
            "Chromium (BoringSSL) refuses it itself. The wrapper's own refusal, the point "
            "of the test, passes before the control runs."
        ),
        call="await crypto.subtle.importKey(",
    ),
    "private keys > an RSA key whose parts disagree is refused (Web Crypto alone imports it)": KnownFailure(
        error=r"DataError: ",
        reason=(
            "the test's set-up: Chromium (BoringSSL) checks an RSA private key's consistency "
            "on import and refuses the JWK with a changed d, so the inconsistent key cannot "
            "even be made there; Node (OpenSSL) imports it. The wrapper's own check matters "
            "only where the platform lets such a key in."
        ),
        call="const broken = await crypto.subtle.importKey(",
    ),
}


def aes_192_test_names() -> list[str]:
    """The AES-GCM Wycheproof tests that import a 192-bit key into Web Crypto.

    Named as wycheproof.test.mjs names them. All vectors with 192-bit keys, except the
    invalid ones with an empty IV, which the wrapper refuses before importing any key.
    """
    suite = json.loads((REPO / "tests/data/wycheproof/aes_gcm_test.json").read_text("utf-8"))
    names = []
    for group in suite["testGroups"]:
        if group["keySize"] != 192:
            continue
        for vector in group["tests"]:
            bits, result, number = len(vector["iv"]) * 4, vector["result"], vector["tcId"]
            if bits == 96:
                names.append(f"AES-GCM > {result} {number}")
            elif result == "valid":
                names.append(f"AES-GCM > IV of {bits} bits refused {number} (valid)")
    return names


KNOWN_FAILURES: dict[str, dict[str, KnownFailure]] = {
    "protocol_vectors": {},
    "wycheproof": dict.fromkeys(aes_192_test_names(), AES_192),
    "protocol_units": UNITS_KNOWN_FAILURES,
}


# --- Node: the reference run --------------------------------------------------------


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed (no `node` on PATH): nothing to compare the browser run with")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
    match = re.match(r"v(\d+)\.", version.stdout.strip())
    if match is None or int(match.group(1)) < 20:
        pytest.fail(f"Node.js 20 or later is needed; found {version.stdout.strip()!r}")
    return node


def full_names(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Node reports a suite after its children: attach each finished level to its parent."""
    pending: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        nesting = event["nesting"]
        event["children"] = pending.pop(nesting + 1, [])
        pending.setdefault(nesting, []).append(event)
    assert set(pending) <= {0}, f"unfinished suites in the Node report: {pending}"

    tests: list[dict[str, str]] = []

    def walk(items: list[dict[str, Any]], path: list[str]) -> None:
        for item in items:
            if item["type"] == "test":
                tests.append({"name": " > ".join([*path, item["name"]]), "status": item["status"]})
            walk(item["children"], [*path, item["name"]])

    walk(pending.get(0, []), [])
    return tests


@pytest.fixture(scope="module")
def node_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """Every suite under ``node --test``, concurrently: suite -> [{name, status}]."""
    node = node_executable()
    reporter = tmp_path_factory.mktemp("node") / "json_lines_reporter.mjs"
    reporter.write_text(NODE_REPORTER, encoding="utf-8")
    processes = {
        suite: subprocess.Popen(
            [
                node,
                "--test",
                f"--test-reporter={reporter}",
                "--test-reporter-destination=stdout",
                f"tests/js/{suite}.test.mjs",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for suite in SUITES
    }
    runs = {}
    try:
        for suite, process in processes.items():
            stdout, stderr = process.communicate(timeout=NODE_TIMEOUT_SECONDS)
            events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
            runs[suite] = full_names(events)
            failed = [test["name"] for test in runs[suite] if test["status"] == "fail"]
            assert process.returncode == 0 and not failed, (
                f"{suite} fails under Node itself (exit {process.returncode}): {failed}\n{stderr[-2000:]}"
            )
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return runs


# --- Chromium -------------------------------------------------------------------------


class RepositoryHandler(SimpleHTTPRequestHandler):
    """GET and HEAD only (the base class has no other methods), below SERVED_PREFIXES.

    A directory is answered with a JSON array of its entries' names, sorted, for the
    node:fs shim's readdirSync.
    """

    extensions_map = {  # noqa: RUF012 (the base class's own attribute, replaced)
        ".html": "text/html",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        "": "application/octet-stream",
    }

    def send_head(self) -> Any:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if ".." in path.split("/") or not path.startswith(SERVED_PREFIXES):
            self.send_error(404)
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> io.BytesIO:
        body = json.dumps(sorted(os.listdir(path))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RepositoryHandler, directory=str(REPO)))
    thread = threading.Thread(target=server.serve_forever, name="repository-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Chromium:
    """Headless Debian Chromium for this module, driven from a thread of its own.

    Playwright's sync API refuses to start while another sync Playwright is active in the
    same thread (tests/browser/conftest.py keeps one for the whole session), so this one
    lives in a dedicated thread and every call goes through that thread.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        try:
            self._thread.submit(self._launch).result()
        except BaseException:
            self.close()
            raise

    def _launch(self) -> None:
        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )

    def run_suite(self, base_url: str, suite: str) -> dict[str, Any]:
        """The page's report for one suite (see suite_runner.html), from a fresh context."""
        return self._thread.submit(self._run_suite, base_url, suite).result()

    def _run_suite(self, base_url: str, suite: str) -> dict[str, Any]:
        assert self._browser is not None
        context = self._browser.new_context()
        try:
            page = context.new_page()
            console_errors: list[str] = []
            page.on(
                "console", lambda message: message.type == "error" and console_errors.append(message.text)
            )
            page.goto(f"{base_url}/tests/browser/suite_runner.html?suite={suite}.test.mjs")
            try:
                page.wait_for_function("window.suiteReport?.done === true", timeout=PAGE_TIMEOUT_MS)
            except PlaywrightTimeoutError:
                stuck = page.evaluate("window.suiteReport?.progress.current ?? null")
                return {"timeout": f"did not finish within {PAGE_TIMEOUT_MS} ms; running: {stuck}"}
            report: dict[str, Any] = page.evaluate("window.suiteReport")
            report["consoleErrors"] = console_errors
            return report
        finally:
            context.close()

    def close(self) -> None:
        def stop() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            self._thread.submit(stop).result()
        finally:
            self._thread.shutdown()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    instance = Chromium()
    try:
        yield instance
    finally:
        instance.close()


def source_line(site: str | None) -> str:
    """The source line at "path:line" (the page reports where each error was thrown)."""
    if site is None:
        return ""
    path, line = site.rsplit(":", 1)
    lines = (REPO / path).read_text("utf-8").splitlines()
    return lines[int(line) - 1].strip() if 0 < int(line) <= len(lines) else ""


@pytest.mark.parametrize("suite", SUITES)
def test_suite_runs_in_chromium_as_in_node(
    suite: str, chromium: Chromium, base_url: str, node_runs: dict[str, list[dict[str, str]]]
) -> None:
    started = time.monotonic()
    report = chromium.run_suite(base_url, suite)
    elapsed = time.monotonic() - started
    assert "timeout" not in report, f"{suite} in Chromium {report.get('timeout')}"

    assert "Chrome" in report["userAgent"], report["userAgent"]
    assert report["secureContext"], "the page is not a secure context: no Web Crypto"
    assert not report["errors"], f"{suite} in Chromium: " + "\n".join(
        report["errors"] + report["consoleErrors"]
    )

    results = report["results"]
    tests = [result for result in results if result["type"] == "test"]
    chromium_names = Counter(" > ".join([*result["path"], result["name"]]) for result in tests)
    node_names = Counter(test["name"] for test in node_runs[suite])
    missing, extra = node_names - chromium_names, chromium_names - node_names
    assert not missing and not extra, (
        f"{suite}: Chromium ran {len(tests)} tests, Node {len(node_runs[suite])}.\n"
        f"Not run in Chromium ({sum(missing.values())}): {sorted(missing)[:20]}\n"
        f"Run only in Chromium ({sum(extra.values())}): {sorted(extra)[:20]}"
    )
    assert len(tests) == len(node_runs[suite])
    node_skipped = sorted(test["name"] for test in node_runs[suite] if test["status"] in {"skip", "todo"})
    chromium_skipped = sorted(
        " > ".join([*result["path"], result["name"]])
        for result in tests
        if result["status"] in {"skip", "todo"}
    )
    assert chromium_skipped == node_skipped

    known = KNOWN_FAILURES.get(suite, {})
    failures = {
        " > ".join([*result["path"], result["name"]]): result
        for result in results
        if result["status"] == "fail"
    }
    problems = [
        f"{name}\n    {result['error']} at {result.get('site')}"
        for name, result in failures.items()
        if name not in known
    ]
    for name, expected in known.items():
        result = failures.get(name)
        if result is None:
            problems.append(f"{name}\n    listed in KNOWN_FAILURES but did not fail ({expected.reason})")
        elif re.match(expected.error, result["error"]) is None:
            problems.append(f"{name}\n    failed with {result['error']!r}, not /{expected.error}/")
        elif expected.call is not None and expected.call not in source_line(result.get("site")):
            problems.append(
                f"{name}\n    failed at {result.get('site')}, not at a line with {expected.call!r}"
            )
    assert not problems, (
        f"{suite} in Chromium ({len(tests)} tests, {len(failures)} failed, {len(known)} known to fail):\n"
        + "\n".join(problems[:40])
    )
    print(
        f"{suite}: {len(tests)} tests in Chromium and in Node, {len(failures)} known failures, {elapsed:.1f} s"
    )
