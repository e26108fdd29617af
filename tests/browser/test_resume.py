"""The page comes back fast after its server is killed (SIGKILL) and started again
(issue 13, item 6): it reconnects by itself, resumes by sequence (nothing lost, nothing
shown twice), and a message whose send frame was in flight when the server died goes
again on the next socket, the same envelope, and arrives once."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from playwright.sync_api import expect

from ..conftest import LiveServer, start_server
from .conftest import MakeTerminal, Person

# The next "send" frame the page writes is lost on the way (as if the connection died
# under it): the test kills the server while the page waits for the answer.
LOSE_NEXT_SEND = """() => {
  const send = WebSocket.prototype.send;
  window.__lost = null;
  WebSocket.prototype.send = function (data) {
    if (window.__lost === null && JSON.parse(data).type === "send") {
      window.__lost = JSON.parse(data).ref;
      return;
    }
    return send.call(this, data);
  };
}"""


def test_a_send_in_flight_when_the_server_is_killed_arrives_once_after_the_restart(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    alice.run(alice.messenger.send_text("bob", "before the restart"))
    bob.open_chat("alice")
    expect(bob.page.locator(".message .message-text")).to_have_text(["before the restart"])

    bob.page.evaluate(LOSE_NEXT_SEND)
    bob.send("in flight when the server died")
    bob.page.wait_for_function("window.__lost !== null")
    server.stop(kill=True)
    expect(bob.page.locator("#connection")).to_have_text("Offline: reconnecting")
    mine = bob.page.locator(".message.mine").filter(has_text="in flight when the server died")
    expect(mine.locator(".status")).to_have_class("status status-sending")

    port = urlparse(server.url).port
    restarted = start_server(server.data_dir, server.log_path, port=port)
    answered = time.monotonic()
    try:
        alice.run(alice.messenger.send_text("bob", "after the restart"))
        expect(bob.page.locator("#connection")).to_have_text("Online", timeout=20_000)
        print(
            f"the page was online {time.monotonic() - answered:.3f} s after the server answered (upper bound)"
        )
        expect(bob.page.locator(".message .message-text")).to_have_text(
            ["before the restart", "in flight when the server died", "after the restart"]
        )
        expect(mine.locator(".status")).not_to_have_class("status status-sending")
        expect(mine.locator(".status")).not_to_have_class("status status-failed")
        items = [
            i for i in alice.run(alice.messenger.sync_inbox()) if i.kind == "message" and i.sender == "bob"
        ]
        assert [(i.text, i.verified) for i in items] == [("in flight when the server died", True)]
    finally:
        # The browser logs each refused reconnect attempt during the outage; expected here.
        # (A round trip to the page first, so that every console event has come in.)
        bob.page.evaluate("0")
        bob.problems[:] = [p for p in bob.problems if "ERR_CONNECTION_REFUSED" not in p]
        restarted.stop()
