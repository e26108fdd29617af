"""User-controlled text is always inserted as text: message bodies and the names a
(possibly malicious) server hands out render literally and run no script. Checked with
a page-side canary (``window.__xss``, which every payload would set) and the page's CSP
violation reports, which a positive control shows are recorded."""

from __future__ import annotations

import json

from playwright.sync_api import Route, WebSocketRoute, expect

from ..conftest import LiveServer
from .conftest import MakeTerminal, Person

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    '"><svg onload=window.__xss=1>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<a href="javascript:window.__xss=1">click</a>',
    "<style>@import 'http://127.0.0.1:1/x.css';</style><b onmouseover=window.__xss=1>hover</b>",
    "{{constructor.constructor('window.__xss=1')()}}",
    "</textarea><img src=x onerror=window.__xss=1>",
]
NAME_PAYLOAD = "<img src=x onerror=window.__xss=1>"


def test_message_bodies_and_server_supplied_names_render_as_text(
    people: dict[str, Person], server: LiveServer, terminal: MakeTerminal
) -> None:
    bob = people["bob"]
    bob.register()
    alice = terminal("alice")
    for payload in PAYLOADS:
        alice.run(alice.messenger.send_text("bob", payload))

    page = bob.page
    bob.open_chat("alice")
    expect(page.locator(".message .message-text")).to_have_text(PAYLOADS)
    # Hover and click everything a payload could have turned into an element.
    for item in page.locator(".message .message-text").all():
        item.hover()
        item.click()
    assert (
        page.locator("#message-list img, #message-list script, #message-list iframe, #message-list a").count()
        == 0
    )
    expect(page.locator(".conversation-item[data-peer='alice'] .conversation-preview")).to_have_text(
        PAYLOADS[-1]
    )

    # A malicious server names a conversation member with markup...
    def poisoned_conversations(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["conversations"].append(
            {
                "id": "d" + "0" * 63,
                "kind": "direct",
                "members": ["bob", NAME_PAYLOAD],
                "created_at": 1,
                "last_message_at": 2,
            }
        )
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/conversations", poisoned_conversations)

    # ...and pushes an inbox frame whose server-side fields are markup.
    def relay(ws: WebSocketRoute) -> None:
        upstream = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            ws.send(message)
            frame = json.loads(message)
            if frame.get("type") == "ready":
                ws.send(
                    json.dumps(
                        {
                            "type": "message",
                            "seq": frame["head"] + 1,
                            "message_id": NAME_PAYLOAD,
                            "conversation_id": NAME_PAYLOAD,
                            "sender": "<svg onload=window.__xss=1>",
                            "server_ts": 1,
                            "envelope": {"v": 1, "text": NAME_PAYLOAD},
                        }
                    )
                )

        upstream.on_message(from_server)
        ws.on_message(lambda message: upstream.send(message))

    page.route_web_socket("**/api/v1/ws", relay)
    page.reload()
    bob.unlock()
    # Neither the listed "member" nor the frame's "sender" is anyone's contact: no name
    # makes those conversation ids (PROTOCOL.md 14.1). What the server claims is shown as
    # its claim, and as text.
    expect(page.locator(".conversation-title")).to_have_count(3)
    names = page.locator(".conversation-title").all_inner_texts()
    assert sorted(names) == ["Unknown contact", "Unknown contact", "alice"], names
    # Sending is paused in both, and the list says so.
    expect(page.locator(".conversation-item:not([data-peer]) .conversation-warning")).to_have_count(2)
    claimed = page.locator(".conversation-item").filter(has_text="Unverifiable message")
    claimed.click()
    expect(page.locator("#conversation-title")).to_have_text("Unknown contact")
    expect(page.locator(".message.unverifiable")).to_have_count(1)
    expect(page.locator(".message.unverifiable .message-sender")).to_have_text(
        "<svg onload=window.__xss=1> (claimed, not verified)"
    )
    listed = (
        page.locator(".conversation-item")
        .filter(has_text="Unknown contact")
        .filter(has_not_text="Unverifiable message")
    )
    listed.click()
    expect(page.locator("#group-banner-text")).to_contain_text(f"The server lists {NAME_PAYLOAD} in it")
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()

    canary = bob.canary()
    assert canary == {"xss": 0, "csp": []}, canary


def test_csp_blocks_injected_markup_and_reports_it(people: dict[str, Person]) -> None:
    """The positive control: what the app never does is blocked and reported."""
    carol = people["carol"]
    page = carol.page
    page.locator("#login-form").wait_for()
    # Trusted Types: an HTML string into the DOM throws, and nothing is inserted.
    error = page.evaluate(
        """() => { try { document.body.insertAdjacentHTML('beforeend', '<img id=bad src=x onerror="window.__xss=1">'); return null; }
                   catch (e) { return e.name; } }"""
    )
    assert error == "TypeError"
    page.wait_for_function("window.__cspViolations.length >= 1")
    assert {v["directive"] for v in carol.canary()["csp"]} == {"require-trusted-types-for"}
    # A page that carries inline script (as injected markup would) under the server's own
    # policy: script-src has no 'unsafe-inline', so neither the script nor the handler runs.
    policy = page.request.get(carol.base_url + "/").headers["content-security-policy"]
    page.route(
        "**/csp-probe",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            headers={"content-security-policy": policy},
            body="<script>window.__xss=1</script><img id=probe src=/static/icon.svg onload='window.__xss=1'>",
        ),
    )
    before = len(carol.canary()["csp"])
    page.goto(carol.base_url + "/csp-probe")
    page.locator("#probe").wait_for()
    page.wait_for_function("window.__cspViolations.length >= 2")
    probe = carol.canary()
    assert probe["xss"] == 0
    assert {v["directive"] for v in probe["csp"]} >= {"script-src-elem", "script-src-attr"}, probe
    assert before == 1
    # The blocked attempts were logged to the console, as they should be; not app faults.
    carol.problems.clear()


def test_group_names_and_server_listed_members_render_as_text(
    people: dict[str, Person], terminal: MakeTerminal
) -> None:
    """A group's name (from a signed group_info) and the member names a server lists for
    a group are text wherever they appear: the list, the title, the lines, the banner and
    the group's details."""
    bob = people["bob"]
    bob.register(remember=True)
    alice = terminal("alice")
    group_id = alice.run(alice.messenger.groups.create(NAME_PAYLOAD, ["bob"]))
    page = bob.page
    title = page.locator(".conversation-item[data-group] .conversation-title")
    expect(title).to_have_text([NAME_PAYLOAD])
    title.click()
    expect(page.locator("#conversation-title")).to_have_text(NAME_PAYLOAD)
    expect(page.locator("#message-list .system-line").last).to_contain_text(
        f"named the group “{NAME_PAYLOAD}”"
    )

    # A malicious server lists a markup "member" in the group, and a group of its own.
    def poisoned_conversations(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        for item in body["conversations"]:
            if item["id"] == group_id:
                item["members"].append("<svg onload=window.__xss=1>")
        body["conversations"].append(
            {
                "id": NAME_PAYLOAD,
                "kind": "group",
                "members": [NAME_PAYLOAD],
                "created_at": 1,
                "last_message_at": 2,
            }
        )
        route.fulfill(response=response, body=json.dumps(body))

    page.route("**/api/v1/conversations", poisoned_conversations)
    page.reload()
    bob.wait_chat()
    page.locator(".conversation-item[data-group]").click()
    warning = "The server lists <svg onload=window.__xss=1>, who was never added by a signed change. Sending is paused."
    expect(page.locator("#group-banner-text")).to_have_text(warning)
    page.get_by_role("button", name="Group details").first.click()
    expect(page.locator("#group-dialog-name")).to_have_text(NAME_PAYLOAD)
    expect(page.locator("#group-server-warning")).to_have_text(warning)
    expect(page.locator("#group-server-list")).to_have_text("<svg onload=window.__xss=1>, alice, bob")
    assert (
        page.locator(
            "#group-dialog img, #group-dialog svg, #message-list img, #conversation-list img"
        ).count()
        == 0
    )

    canary = bob.canary()
    assert canary == {"xss": 0, "csp": []}, canary
    # The page re-checks the list in the background; let a request in flight finish.
    page.unroute_all(behavior="wait")
