"""widget.d.ts against the SDK it declares, with the TypeScript compiler (npm's typescript@5,
unpacked once into the user's cache): an app using every method, option and event compiles
under `--strict`; widget.js's API object is typed by the declarations (`--checkJs`); the
loader's stub and the replay of queued calls know every declared method; and what each method
answers from a real server, in Chromium, fits the declared types exactly (no field missing,
none undeclared)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import hal
from tests.browser.conftest import cached_npm_package, node_path

TYPESCRIPT = "typescript@5"
STATIC = Path(hal.__file__).parent / "web" / "static"
DECLARATIONS = STATIC / "widget"  # widget.d.ts, imported as a module
EXAMPLE = Path(__file__).parent / "widget_example.ts"
COMPILE = ["--noEmit", "--strict", "--target", "es2020", "--lib", "es2020,dom",
           "--module", "esnext", "--moduleResolution", "bundler"]  # fmt: skip


def typescript() -> Path:
    return cached_npm_package(TYPESCRIPT, "the SDK's type check")


def tsc(*args: str) -> None:
    """Run the TypeScript compiler; fail with its errors."""
    node = node_path("the SDK's type check")
    result = subprocess.run(
        [node, str(typescript() / "bin" / "tsc"), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_app_using_every_method_compiles_under_strict():
    tsc(*COMPILE, str(EXAMPLE))


def test_widget_js_is_typed_by_the_declarations():
    """Its `api` object is annotated with HalWidgetApi: a method missing from either side, or
    one whose parameters disagree, is an error."""
    tsc("--noEmit", "--target", "es2020", "--lib", "es2020,dom", "--allowJs", "--checkJs",
        str(STATIC / "widget.js"))  # fmt: skip


# Node loads the loader's stub, queues one call of each of its methods, then loads widget.js,
# which replays them; and reads the declared members with the compiler's own parser.
INSPECT = """
const fs = require("fs");
const [typescript, declarations, loader, widget] = process.argv.slice(2);
const window = {};
const document = { createElement: () => ({}), head: { appendChild: () => undefined } };
const run = (file) =>
  new Function("window", "document", fs.readFileSync(file, "utf8"))(window, document);
run(loader);
const stub = window.HalWidget;
const queued = Object.keys(stub).filter((name) => name !== "_q");
const replayed = queued.map((name) =>
  stub[name]().then(() => "resolved", (error) => (error && error.code) || String(error)));
run(widget);
const ts = require(typescript);
const source = ts.createSourceFile("widget.d.ts", fs.readFileSync(declarations, "utf8"),
  ts.ScriptTarget.ES2020);
const api = source.statements.find(
  (s) => ts.isInterfaceDeclaration(s) && s.name.text === "HalWidgetApi");
Promise.all(replayed).then((outcomes) => console.log(JSON.stringify({
  declared: api.members.map((member) => member.name.text),
  sdk: Object.fromEntries(Object.entries(window.HalWidget).map(([k, v]) => [k, typeof v])),
  queued: Object.fromEntries(queued.map((name, i) => [name, outcomes[i]])),
})));
"""


def test_the_loader_and_the_sdk_have_exactly_the_declared_methods(tmp_path):
    node = node_path("the SDK's type check")
    script = tmp_path / "inspect.js"
    script.write_text(INSPECT)
    result = subprocess.run(
        [node, str(script), str(typescript() / "lib" / "typescript.js"),
         str(STATIC / "widget.d.ts"), str(STATIC / "loader.js"), str(STATIC / "widget.js")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    declared = set(found["declared"])
    assert set(found["sdk"]) == declared
    assert found["sdk"].pop("version") == "string"
    assert set(found["sdk"].values()) == {"function"}
    assert set(found["queued"]) == declared - {"version"}  # the loader's stub
    # A call made before widget.js arrived reaches the real method: none is unknown to it.
    assert "unknown_method" not in found["queued"].values(), found["queued"]


# What a real server answers, through the SDK in Chromium, checked against the declarations.
EVERY_METHOD = """async () => {
    const events = {};
    const plain = (error) => ({name: error.name, message: error.message, code: error.code,
                               status: error.status, field: error.field});
    for (const name of ["ready", "identify", "message", "open", "close", "reset", "error"]) {
        HalWidget.on(name, (payload) => {
            events[name] = payload instanceof Error ? plain(payload) : payload;
        });
    }
    const alice = await (await fetch("/demo/identity/alice")).json();
    const answers = {};
    answers.boot = await HalWidget.boot({app_id: "demo", launcher: true, poll_ms: 300,
                                         idle_poll_ms: 300});
    answers.identify = await HalWidget.identify(alice.identify);
    answers.setProperties = await HalWidget.setProperties({theme: "dark", seats: 3});
    answers.track = await HalWidget.track("typed", {n: 1}, {event_id: "evt-typed-1"});
    answers.trackAgain = await HalWidget.track("typed", {n: 1}, {event_id: "evt-typed-1"});
    answers.setStage = await HalWidget.setStage("Customer", {company_id: "acme"});
    answers.setDeal = await HalWidget.setDeal({id: "typed-deal", amount: 10, currency: "EUR",
                                               status: "open"}, {company_id: "acme"});
    answers.sendMessage = await HalWidget.sendMessage("Are my types right?");
    await HalWidget.open();
    await HalWidget.close();
    window.collected = {answers, events};
}"""

AFTER_THE_REPLY = """async () => {
    const {answers, events} = window.collected;
    answers.fetchMessages = await HalWidget.fetchMessages();
    answers.reset = await HalWidget.reset();
    answers.error = await HalWidget.setStage("Customer").catch((error) => ({
        name: error.name, message: error.message, code: error.code, status: error.status,
        field: error.field}));
    await new Promise((resolve) => setTimeout(resolve, 0)); // the error event comes after
    return {answers, events};
}"""

TYPED = {
    "boot": "{ visitor_id: string }",
    "identify": "IdentifyResult",
    "setProperties": "SetPropertiesResult",
    "track": "TrackResult",
    "trackAgain": "TrackResult",
    "setStage": "SetStageResult",
    "setDeal": "SetDealResult",
    "sendMessage": "SendMessageResult",
    "fetchMessages": "MessagesResult",
    "reset": "{ visitor_id: string }",
    "error": 'Pick<HalError, "name" | "message" | "code" | "status" | "field">',
}


def typed_module(answers: dict[str, Any], events: dict[str, Any]) -> str:
    """Each answer as an object literal of its declared type: tsc refuses a missing field and
    (literals are checked for excess properties) an undeclared one."""
    names = sorted({"HalError", "WidgetEvents"} | {t for t in TYPED.values() if t.isidentifier()})
    lines = [f"import type {{ {', '.join(names)} }} from {json.dumps(str(DECLARATIONS))};"]
    lines += [f"export const {name}: {TYPED[name]} = {json.dumps(answer)};"
              for name, answer in answers.items()]  # fmt: skip
    lines.append(f"export const events: Partial<WidgetEvents> = {json.dumps(events)};")
    return "\n".join(lines) + "\n"


@pytest.mark.browser
def test_what_each_method_answers_fits_the_declarations(page, demo, tmp_path):
    page.goto(f"{demo.url}/demo")
    page.wait_for_function("() => window.HalWidget && window.HalWidget.version")
    page.evaluate(EVERY_METHOD)
    expect(page.locator("#hal-widget .msg.visitor").last).to_have_text("Are my types right?")
    conversation = page.evaluate("() => window.collected.answers.sendMessage.conversation.id")
    httpx.post(
        f"{demo.url}/api/projects/demo/conversations/{conversation}/messages",
        json={"body": "They are."},
        headers={"Authorization": f"Bearer {demo.token}"},
    ).raise_for_status()
    page.wait_for_function("() => window.collected.events.message")
    collected = page.evaluate(AFTER_THE_REPLY)
    answers, events = collected["answers"], collected["events"]
    assert set(answers) == set(TYPED)
    assert answers["trackAgain"]["duplicate"] is True
    assert answers["error"]["code"] == "not_identified"
    assert set(events) == {"ready", "identify", "message", "open", "close", "reset", "error"}
    module = tmp_path / "answers.ts"
    module.write_text(typed_module(answers, events))
    tsc(*COMPILE, str(module))
