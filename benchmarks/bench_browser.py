"""Browser benchmark: the web client in Debian's Chromium, driven by Playwright.

Run from the repository root::

    .venv/bin/python benchmarks/bench_browser.py                 # defaults, about a minute
    .venv/bin/python benchmarks/bench_browser.py --messages 50 --history 300 --runs 3
    .venv/bin/python benchmarks/bench_browser.py --json          # machine-readable result

It starts its own server process (``securechat serve`` on a free loopback port, fresh
SQLite data dir in a temp directory, as ``tests/conftest.py`` does) and a headless
Chromium from ``/usr/bin/chromium`` (never a downloaded browser). Progress goes to
stderr, the result to stdout.

1. Send-to-display latency between two browser pages. alice and bob register in the UI,
   each in their own browser context (own cookies and IndexedDB), and both have their
   conversation open. alice sends ``--messages`` texts one at a time through the composer
   (the text goes into ``#composer-text`` and the form is submitted, which is what Enter
   does); the next one goes once the previous one is on bob's screen. Timestamps are
   taken inside the pages with ``performance.timeOrigin + performance.now()``: in alice's
   page just before the submit, in bob's page by a MutationObserver on ``#message-list``
   when a ``.message.theirs`` with that text appears (in the DOM, before paint). Both
   pages run in one browser on one machine, so the two clocks are the same wall clock; the
   script checks it (the "clock check" line). Also reported: keypress -> alice's own
   message leaves "Sending" (the server accepted it), and sequential throughput.
2. Opening a long conversation. dave (the Python terminal client) sends ``--history``
   messages to carol (registered in the browser with "Remember this device", her page
   open on the conversation list, so they arrive live and her inbox position is saved).
   Then ``--runs`` times: reload carol's page (a remembered device goes straight to the
   chat), click dave's conversation, and measure in the page from the click (a capturing
   listener on ``document``) to 50 ``.message`` items in ``#message-list`` (the newest
   page of history, fetched, verified and decrypted in the browser), and to the frame
   after that. Then scroll ``#message-list`` to the top and measure until the next 50
   older messages are in the list. An unmeasured first open clears the unread count.
3. The Chromium version, CPU count and commit, and for each part how busy the machine
   was: this benchmark's processes (driver, server, Chromium) and other processes, which
   make the numbers pessimistic when they are busy.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revision import git_revision  # benchmarks/revision.py, beside this script

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.conftest / tests.browser helpers

import psutil  # noqa: E402
from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from tests.browser.conftest import DESKTOP, Person  # noqa: E402
from tests.browser.terminal import TerminalUser  # noqa: E402
from tests.conftest import LiveServer, start_server  # noqa: E402

import securechat  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
HISTORY_PAGE = 50  # the page size of the app (messenger.js HISTORY_PAGE)
WAIT_MS = 30_000  # one message on screen, one conversation opened
SETTLE_MS = 500  # after a reload, before the click


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def by_block(values: list[float], blocks: int = 4) -> list[dict[str, Any]]:
    """p50 of consecutive slices (first to last message): does latency drift as the list grows?"""
    size = max(1, math.ceil(len(values) / blocks))
    return [
        {
            "first": start + 1,
            "last": min(start + size, len(values)),
            "p50": statistics.median(values[start : start + size]),
        }
        for start in range(0, len(values), size)
    ]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.5),
        "p90": percentile(ordered, 0.9),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


class CpuMeter:
    """Machine-wide busy CPU over a part, and how much of it went to this benchmark's own
    processes (driver, server, Playwright, Chromium and its children: sampled every 0.25 s,
    so a process that ends loses at most its last interval). The rest is other processes."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.seen: dict[tuple[int, float], float] = {}
        self.own = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, count: bool) -> None:
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    times = process.cpu_times()
            except psutil.Error:
                continue
            cpu = times.user + times.system
            if count:
                # A process first seen after the start began during the part: all of it counts.
                self.own += cpu - self.seen.get(key, 0.0)
            self.seen[key] = cpu

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self._sample(count=True)

    @staticmethod
    def _machine() -> tuple[float, float]:
        times = psutil.cpu_times()
        busy = times.user + times.system + getattr(times, "nice", 0.0)
        busy += getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
        return busy, getattr(times, "steal", 0.0)

    def __enter__(self) -> CpuMeter:
        self._sample(count=False)
        self.start = time.perf_counter()
        self.machine_start = self._machine()
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self._sample(count=True)
        busy, steal = self._machine()
        wall = time.perf_counter() - self.start
        self.result = {
            "wall_s": wall,
            "machine_cores": (busy - self.machine_start[0]) / wall,
            "own_cores": self.own / wall,
            "other_cores": max(0.0, busy - self.machine_start[0] - self.own) / wall,
            "steal_cores": (steal - self.machine_start[1]) / wall,
        }


# ---------------------------------------------------------------------------------------
# In-page instrumentation (all times: performance.timeOrigin + performance.now(), in ms)

NOW = "(performance.timeOrigin + performance.now())"

# Bob: when does each text first appear as a received message?
WATCH_ARRIVALS = f"""() => {{
  const list = document.getElementById("message-list");
  const arrivals = new Map();
  window.__benchArrivals = arrivals;
  new MutationObserver(() => {{
    const now = {NOW};
    for (const node of list.querySelectorAll(".message.theirs .message-text")) {{
      if (!arrivals.has(node.textContent)) arrivals.set(node.textContent, now);
    }}
  }}).observe(list, {{childList: true, subtree: true}});
}}"""

# Alice: when does her own copy leave "Sending" (the server's answer arrived)?
WATCH_SENT = f"""() => {{
  const list = document.getElementById("message-list");
  const accepted = new Map();
  window.__benchAccepted = accepted;
  new MutationObserver(() => {{
    const now = {NOW};
    for (const item of list.querySelectorAll(".message.mine")) {{
      const text = item.querySelector(".message-text")?.textContent;
      const status = item.querySelector(".status");
      if (text && status && !status.classList.contains("status-sending") && !accepted.has(text)) {{
        accepted.set(text, {{at: now, status: status.className}});
      }}
    }}
  }}).observe(list, {{childList: true, subtree: true}});
}}"""

# Alice: what Enter in the composer does (the keydown handler and the form's submit
# handler both call ChatView.send), with the time just before.
SUBMIT = f"""(text) => {{
  const box = document.getElementById("composer-text");
  box.value = text;
  box.dispatchEvent(new Event("input", {{bubbles: true}}));
  const t0 = {NOW};
  document.getElementById("composer").requestSubmit();
  return t0;
}}"""

# Carol: from the click on a conversation item to `count` messages in the list.
WATCH_OPEN = f"""(count) => {{
  const list = document.getElementById("message-list");
  const result = {{click: null, shown: null, frame: null, n: 0, first: null, last: null}};
  window.__benchOpen = result;
  document.addEventListener("click", (event) => {{
    if (result.click === null && event.target.closest(".conversation-item")) result.click = {NOW};
  }}, true);
  const observer = new MutationObserver(() => {{
    const items = list.querySelectorAll(".message");
    if (result.shown !== null || items.length < count) return;
    result.shown = {NOW};
    result.n = items.length;
    result.first = items[0].querySelector(".message-text").textContent;
    result.last = items[items.length - 1].querySelector(".message-text").textContent;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => {{ result.frame = {NOW}; }}, 0));
  }});
  observer.observe(list, {{childList: true}});
}}"""

# Carol: scroll the list to the top; until the next page of older messages is in it.
SCROLL_TOP = f"""() => {{
  const list = document.getElementById("message-list");
  const before = list.querySelectorAll(".message").length;
  const result = {{start: null, shown: null, frame: null, before, n: 0, first: null}};
  window.__benchOlder = result;
  const observer = new MutationObserver(() => {{
    const items = list.querySelectorAll(".message");
    if (result.shown !== null || items.length <= before) return;
    result.shown = {NOW};
    result.n = items.length;
    result.first = items[0].querySelector(".message-text").textContent;
    observer.disconnect();
    requestAnimationFrame(() => setTimeout(() => {{ result.frame = {NOW}; }}, 0));
  }});
  observer.observe(list, {{childList: true}});
  result.start = {NOW};
  list.scrollTop = 0;
}}"""


def page_now(page: Page) -> float:
    value: float = page.evaluate(f"() => {NOW}")
    return value


def clock_check(a: Page, b: Page, rounds: int = 5) -> tuple[float, float]:
    """Offset of b's page clock from a's (ms), and its uncertainty: b is read between two
    readings of a; the best (narrowest) round counts."""
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        a1, b1, a2 = page_now(a), page_now(b), page_now(a)
        candidate = (b1 - (a1 + a2) / 2, (a2 - a1) / 2)
        if best is None or candidate[1] < best[1]:
            best = candidate
    assert best is not None
    return best


# ---------------------------------------------------------------------------------------
# People


def new_person(browser: Browser, name: str, url: str) -> Person:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    person = Person(name, context, page, url)
    person.watch(page)
    page.goto(url)
    return person


# ---------------------------------------------------------------------------------------
# 1. Send-to-display latency


def bench_latency(browser: Browser, url: str, messages: int, warmup: int) -> dict[str, Any]:
    progress("latency: alice and bob register in the browser")
    alice = new_person(browser, "alice", url)
    bob = new_person(browser, "bob", url)
    alice.register()
    bob.register()
    alice.start_chat("bob")
    alice.send("hello bob")
    bob.page.locator(".conversation-item[data-peer='alice']").wait_for()
    bob.open_chat("alice")
    bob.page.locator(".message.theirs .message-text", has_text="hello bob").wait_for()
    bob.page.evaluate(WATCH_ARRIVALS)
    alice.page.evaluate(WATCH_SENT)

    latencies: list[float] = []
    accepted: list[float] = []
    first_send = last_shown = 0.0
    progress(f"latency: {warmup} warm-up messages, then {messages} measured")
    for index in range(warmup + messages):
        measured = index >= warmup
        text = f"latency {'probe' if measured else 'warm-up'} {index:05d}"
        t0: float = alice.page.evaluate(SUBMIT, text)
        handle = bob.page.wait_for_function(
            "(text) => window.__benchArrivals.get(text)", arg=text, timeout=WAIT_MS
        )
        shown = float(handle.json_value())
        if measured:
            if not latencies:
                first_send = t0
            last_shown = shown
            latencies.append(shown - t0)
            sent = alice.page.wait_for_function(
                "(text) => window.__benchAccepted.get(text)", arg=text, timeout=WAIT_MS
            ).json_value()
            if "status-failed" in sent["status"]:
                raise RuntimeError(f"alice's message {text!r} failed to send")
            accepted.append(sent["at"] - t0)
            if len(latencies) % 50 == 0:
                progress(
                    f"latency: {len(latencies)}/{messages}, p50 so far {statistics.median(latencies):.1f} ms"
                )
    unverified = bob.page.locator(".message.theirs[data-verified=false]").count()
    offset, uncertainty = clock_check(alice.page, bob.page)
    problems = alice.problems + bob.problems
    for person in (alice, bob):
        person.context.close()
    return {
        "messages": messages,
        "warmup": warmup,
        "display_ms": summary(latencies),
        "display_p50_by_block": by_block(latencies),
        "accepted_ms": summary(accepted),
        "wall_s": (last_shown - first_send) / 1000,
        "messages_per_s": messages / ((last_shown - first_send) / 1000),
        "clock_offset_ms": offset,
        "clock_uncertainty_ms": uncertainty,
        "unverified": unverified,
        "page_problems": problems,
    }


# ---------------------------------------------------------------------------------------
# 2. Opening a long conversation


def send_history(dave: TerminalUser, count: int) -> list[str]:
    texts = [f"history {i:05d} of {count}" for i in range(1, count + 1)]

    async def send_all() -> None:
        for text in texts:
            await dave.messenger.send_text("carol", text)

    future = asyncio.run_coroutine_threadsafe(send_all(), dave.loop)
    future.result(timeout=max(120, count))  # about 10 ms each; generous
    return texts


def open_once(carol: Person, count: int) -> dict[str, Any]:
    page = carol.page
    page.reload()
    carol.wait_chat()
    item = page.locator(".conversation-item[data-peer='dave']")
    item.wait_for()
    # Let start-up work (inbox resume, list previews) finish: the click measures the open.
    page.wait_for_timeout(SETTLE_MS)
    page.evaluate(WATCH_OPEN, count)
    item.click()
    opened = page.wait_for_function(
        "() => window.__benchOpen.frame !== null && window.__benchOpen", timeout=WAIT_MS
    ).json_value()
    if opened["click"] is None:
        raise RuntimeError("the click on the conversation item was not seen by the page")
    # open() ends by scrolling to the newest message; wait for that before scrolling up.
    page.wait_for_function(
        "() => { const l = document.getElementById('message-list');"
        " return l.scrollHeight - l.scrollTop - l.clientHeight < 2 && l.scrollTop > 200; }",
        timeout=WAIT_MS,
    )
    page.wait_for_timeout(200)
    page.evaluate(SCROLL_TOP)
    older = page.wait_for_function(
        "() => window.__benchOlder.frame !== null && window.__benchOlder", timeout=WAIT_MS
    ).json_value()
    return {
        "open_ms": opened["shown"] - opened["click"],
        "open_frame_ms": opened["frame"] - opened["click"],
        "open_count": opened["n"],
        "open_first": opened["first"],
        "open_last": opened["last"],
        "older_ms": older["shown"] - older["start"],
        "older_frame_ms": older["frame"] - older["start"],
        "older_count": older["n"],
        "older_first": older["first"],
    }


def bench_open(browser: Browser, url: str, workdir: Path, history: int, runs: int) -> dict[str, Any]:
    progress("open: carol registers in the browser (remember this device), dave in the terminal client")
    carol = new_person(browser, "carol", url)
    carol.register(remember=True)
    dave = TerminalUser(workdir / "dave-home", url)
    try:
        dave.run(dave.messenger.register("dave", "grey seal lighthouse 1871"))
        progress(f"open: dave sends {history} messages to carol (setup, not measured)")
        start = time.perf_counter()
        texts = send_history(dave, history)
        setup_s = time.perf_counter() - start
    finally:
        dave.close()
    item = carol.page.locator(".conversation-item[data-peer='dave']")
    progress(f"open: sent in {setup_s:.1f} s; waiting until carol's page has received them all")
    item.locator(".conversation-preview", has_text=texts[-1]).wait_for(timeout=max(120_000, history * 200))
    item.locator(".unread", has_text=str(history)).wait_for(timeout=WAIT_MS)
    # Her inbox position is saved after each entry; give the last acknowledgement a moment.
    carol.page.wait_for_timeout(500)

    newest = texts[-HISTORY_PAGE:]
    expected_open = (newest[0], newest[-1])
    expected_older_first = texts[-2 * HISTORY_PAGE] if history >= 2 * HISTORY_PAGE else texts[0]
    progress("open: first open (unmeasured: clears the unread count)")
    warm = open_once(carol, HISTORY_PAGE)
    results = []
    for run in range(1, runs + 1):
        result = open_once(carol, HISTORY_PAGE)
        checks = {
            "newest 50 shown": (result["open_first"], result["open_last"]) == expected_open
            and result["open_count"] == HISTORY_PAGE,
            "older page shown": result["older_first"] == expected_older_first
            and result["older_count"] == min(history, 2 * HISTORY_PAGE),
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise RuntimeError(f"run {run}: unexpected list contents ({', '.join(failed)}): {result}")
        progress(f"open: run {run}: open {result['open_ms']:.0f} ms, older page {result['older_ms']:.0f} ms")
        results.append(result)
    unverified = carol.page.locator(".message[data-verified=false]").count()
    problems = carol.problems
    carol.context.close()
    return {
        "history": history,
        "runs": results,
        "warm": warm,
        "setup_s": setup_s,
        "unverified": unverified,
        "page_problems": problems,
    }


# ---------------------------------------------------------------------------------------
# Report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"SecureChat browser benchmark, {meta['date']}",
        f"host: nproc={meta['nproc']} ({meta['cpu']}); Python {meta['python']}; {meta['platform']}",
        f"securechat {meta['securechat_version']} at {meta['revision']}",
        f"browser: Chromium {meta['chromium']} headless ({CHROMIUM}, --no-sandbox) via Playwright "
        f"{meta['playwright']}; viewport {DESKTOP['width']}x{DESKTOP['height']}",
        "server: securechat serve on 127.0.0.1 (fresh SQLite data dir); server, browser and driver "
        f"share the {meta['nproc']} cores",
    ]
    latency = report.get("latency")
    if latency:
        display, accepted = latency["display_ms"], latency["accepted_ms"]
        lines += [
            "",
            f"1. send -> display, browser to browser: {latency['messages']} messages alice -> bob, one at a "
            f"time, after {latency['warmup']} warm-up",
            f"{'':44}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'mean':>8}",
        ]
        for label, values in (
            ("Enter -> text in bob's #message-list, ms", display),
            ("Enter -> alice's copy leaves Sending, ms", accepted),
        ):
            lines.append(
                f"{label:44}"
                + "".join(f"{values[key]:>8.1f}" for key in ("p50", "p90", "p99", "max", "mean"))
            )
        lines.append(
            "  p50 by position: "
            + ", ".join(f"{b['first']}-{b['last']}: {b['p50']:.1f}" for b in latency["display_p50_by_block"])
            + " (bob's list grows by one message each time)"
        )
        lines += [
            f"sequential throughput: {latency['messages']} messages in {latency['wall_s']:.1f} s = "
            f"{latency['messages_per_s']:.1f} messages/s (each sent once the previous one is shown;",
            "  includes the driver's round trips between messages)",
            f"clock check: bob's page clock - alice's = {latency['clock_offset_ms']:+.2f} ms "
            f"(+/- {latency['clock_uncertainty_ms']:.2f} ms)",
        ]
    opening = report.get("open")
    if opening:
        runs = opening["runs"]

        def row(label: str, key: str) -> str:
            values = [r[key] for r in runs]
            each = ", ".join(f"{v:.0f}" for v in values)
            return f"{label:44}{statistics.median(values):>8.0f}   ({each})"

        lines += [
            "",
            f"2. open a conversation of {opening['history']:,} messages (dave, terminal client -> carol, "
            f"browser), {len(runs)} run{'s' if len(runs) != 1 else ''}",
            f"{'':44}{'median':>8}   (each run)",
            row("click -> newest 50 in #message-list, ms", "open_ms"),
            row("click -> next frame after that, ms", "open_frame_ms"),
            row("scroll to top -> 50 older in the list, ms", "older_ms"),
            row("scroll to top -> next frame after that, ms", "older_frame_ms"),
            f"first open (unmeasured run, also clears {opening['history']:,} unread): "
            f"{opening['warm']['open_ms']:.0f} ms, older page {opening['warm']['older_ms']:.0f} ms",
            f"setup: the terminal client sent {opening['history']:,} messages in {opening['setup_s']:.1f} s "
            "(one at a time); carol's page received them live",
        ]
    cpu_lines = []
    for number, part in ((1, "latency"), (2, "open")):
        cpu = (report.get(part) or {}).get("cpu")
        if cpu:
            line = (
                f"CPU during {number} ({cpu['wall_s']:.0f} s, setup included): machine {cpu['machine_cores']:.2f} "
                f"of {meta['nproc']} cores busy; this benchmark's processes {cpu['own_cores']:.2f}, "
                f"other processes {cpu['other_cores']:.2f}"
            )
            if cpu["steal_cores"] > 0.05:
                line += f", hypervisor steal {cpu['steal_cores']:.2f}"
            cpu_lines.append(line)
            if cpu["other_cores"] > 0.25:
                cpu_lines.append("  (other processes were busy meanwhile: these numbers are pessimistic)")
    if cpu_lines:
        lines += ["", *cpu_lines]
    problems = []
    for part in ("latency", "open"):
        section = report.get(part) or {}
        if section.get("unverified"):
            problems.append(f"{part}: {section['unverified']} unverifiable messages on screen")
        problems += [f"{part}: {p}" for p in section.get("page_problems", [])]
    lines += [
        "",
        "Times are taken in the pages with performance.timeOrigin + performance.now(); all pages are",
        "in one Chromium on this machine, so their clocks agree (see the clock check). 'In the list' =",
        "a MutationObserver saw the items in the DOM (before paint); 'next frame' = a requestAnimationFrame",
        "callback after that plus a task. Each run of 2 reloads the page first (remembered device) and",
        f"clicks {SETTLE_MS} ms after the conversation list is shown and the inbox is online. 'Enter' in",
        "part 1 = the text set in #composer-text and the composer form submitted (requestSubmit), which",
        "runs the same handler as the Enter key.",
    ]
    if problems:
        lines += ["", "problems:"] + [f"  {p}" for p in problems]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="SecureChat browser benchmark (loopback, headless Chromium)."
    )
    parser.add_argument("--messages", type=int, default=200, help="measured messages in part 1 (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured messages before them (default 5)")
    parser.add_argument("--history", type=int, default=1000, help="messages in the conversation of part 2")
    parser.add_argument("--runs", type=int, default=5, help="measured opens in part 2 (default 5)")
    parser.add_argument("--only", choices=("latency", "open"), help="run one part only")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("--messages and --runs must be positive, --warmup not negative")
    if args.history < HISTORY_PAGE:
        parser.error(f"--history must be at least {HISTORY_PAGE}")
    return args


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # Unwind normally, so the finally blocks close the browser and stop the server.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="securechat-bench-browser-"))
    server: LiveServer | None = None
    report: dict[str, Any] = {}
    try:
        progress("starting the server")
        server = start_server(workdir / "server-data", workdir / "server.log")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                report["meta"] = {
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                    "nproc": len(os.sched_getaffinity(0))
                    if hasattr(os, "sched_getaffinity")
                    else os.cpu_count(),
                    "cpu": cpu_model(),
                    "python": platform.python_version(),
                    "platform": platform.platform(terse=True),
                    "securechat_version": securechat.__version__,
                    "revision": git_revision(),
                    "chromium": browser.version,
                    "playwright": importlib.metadata.version("playwright"),
                }
                if args.only in (None, "latency"):
                    with CpuMeter() as meter:
                        report["latency"] = bench_latency(browser, server.url, args.messages, args.warmup)
                    report["latency"]["cpu"] = meter.result
                if args.only in (None, "open"):
                    with CpuMeter() as meter:
                        report["open"] = bench_open(browser, server.url, workdir, args.history, args.runs)
                    report["open"]["cpu"] = meter.result
            finally:
                browser.close()
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if server is not None:
            tail = "\n".join(server.log().splitlines()[-30:])
            print(f"last lines of the server log:\n{tail}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report["meta"]["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
        print(f"(benchmark wall time {report['meta']['wall_s']:.0f} s)")
    failed = any(
        (report.get(part) or {}).get("unverified") or (report.get(part) or {}).get("page_problems")
        for part in ("latency", "open")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
