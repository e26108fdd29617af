"""Imports run one way (STYLE.md, "Layout"); these tests read every import statically.

Python (``src/securechat``), by area; every area may also import the root package
``securechat`` (it holds only ``__version__`` and imports nothing of ours), except
``protocol``, which imports nothing of ours at all::

    cli ──> client ──> protocol          server ──> protocol
     │                                     ▲
     └── cli/serve.py only ────────────────┘

Inside the client, ``client.core`` (the decisions of PROTOCOL.md 14, pure functions)
imports only ``protocol`` and itself: never the transport, state, realtime or messenger
modules that call it.

Inside the server::

    app.py ──> everything
    api ──> services ──> storage
     │         │
     └────────>┴──> realtime (broker, socket slots, frame budget)
    migrations ──> storage (the tables)
    headers, limits, web_client (ASGI pieces that app.py installs) ──> base
    every layer ──> base: errors, settings, metrics, logs (and the empty package itself)

Browser (``src/securechat/web``): every import is a relative path inside ``web/`` (no
third-party code ships, so no bare specifier and no URL), and the layers run one way::

    app/ ──> core/ ──> protocol/
     │                     ▲
     └─────────────────────┘

``protocol/`` never imports ``app/`` or ``core/``; ``core/`` (the client's decisions,
PROTOCOL.md 14) imports only ``protocol/`` and itself.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "securechat"
WEB_DIR = PACKAGE_DIR / "web"

# ---------------------------------------------------------------------------
# Python: reading imports
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PyModule:
    name: str
    is_package: bool
    source: str


def python_modules(package_dir: Path) -> dict[str, PyModule]:
    """Every ``.py`` file under ``package_dir``, by dotted module name."""
    modules: dict[str, PyModule] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = PyModule(name, is_package, path.read_text(encoding="utf-8"))
    return modules


def imports_of(module: PyModule, known: Collection[str]) -> set[str]:
    """The absolute names of the modules that ``module`` imports, wherever the statement
    is (top level, inside a function, under ``if TYPE_CHECKING:``).

    ``from X import y`` counts as importing ``X.y`` when that is a module, else ``X``.
    Relative imports are resolved against the module's package.
    """
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > len(base):
                    raise ValueError(f"{module.name}: relative import beyond the top-level package")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return found


# ---------------------------------------------------------------------------
# Python: the rules
# ---------------------------------------------------------------------------

# What each area of the package may import besides itself, and the rule's wording.
AREA_RULES: dict[str, tuple[frozenset[str], str]] = {
    "root": (frozenset(), "the root package imports nothing of ours"),
    "main": (frozenset({"root", "cli"}), "python -m securechat only starts the CLI"),
    "protocol": (frozenset({"protocol"}), "protocol imports nothing of ours"),
    "client": (frozenset({"root", "client", "protocol"}), "client may import only protocol"),
    "cli": (
        frozenset({"root", "cli", "client", "protocol"}),
        "cli may import only client and protocol; only cli/serve.py reaches the server",
    ),
    "server": (frozenset({"root", "server", "protocol"}), "server may import only protocol"),
}

# The CLI modules that may import the server. `securechat serve` runs the server in this
# process, and `securechat admin create` grants the admin role on the server's own
# database (the operator runs it beside the server, with its data). Both live in
# cli/serve.py, which the CLI imports lazily; every other command goes through the
# client library to a server over HTTP.
SERVER_DOORS = frozenset({"securechat.cli.serve"})

# The server's layers. A subpackage is one layer (api/ holds the routers and the WebSocket
# endpoint with its per-socket session; realtime/ holds the broker the services publish
# through and the connection caps, with no rules of its own). Each top-level module is
# placed by hand, so a new one fails test_every_module_is_placed until someone decides
# where it belongs.
SERVER_SUBPACKAGES = frozenset({"api", "services", "realtime", "storage", "migrations"})
SERVER_TOP_MODULES = {
    "app": "app",
    "errors": "base",
    "settings": "base",
    "metrics": "base",
    "logs": "base",
    "headers": "middleware",
    "limits": "middleware",
    "web_client": "middleware",
    # The per-process connection guard that cli/serve.py installs under uvicorn: with the
    # socket slots, one of the connection caps.
    "connections": "realtime",
}
SERVER_RULES: dict[str, tuple[frozenset[str], str]] = {
    "app": (
        frozenset({"app", "api", "services", "realtime", "storage", "migrations", "middleware", "base"}),
        "app.py wires everything",
    ),
    "api": (
        frozenset({"api", "services", "realtime", "base"}),
        "api goes through services: never storage or app",
    ),
    "services": (
        frozenset({"services", "realtime", "storage", "base"}),
        "services never import api (or app)",
    ),
    "realtime": (
        frozenset({"realtime", "base"}),
        "realtime sits under the services: it imports no api, service or storage",
    ),
    "storage": (
        frozenset({"storage", "base"}),
        "storage never imports services, api or realtime",
    ),
    "migrations": (frozenset({"migrations", "storage", "base"}), "migrations read only storage's tables"),
    "middleware": (frozenset({"base"}), "the ASGI pieces that app.py installs import only base modules"),
    "base": (frozenset({"base"}), "errors, settings, metrics and logs import no layer above them"),
}


# The client's decisions (PROTOCOL.md 14): pure, so they import only protocol and themselves.
CLIENT_CORE = "securechat.client.core"
CLIENT_CORE_RULE = "client.core may import only protocol and itself (the decisions are pure)"


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def area_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "securechat":
        return None
    if len(parts) == 1:
        return "root"
    return "main" if parts[1] == "__main__" else parts[1]


def server_layer(module: str) -> str | None:
    parts = module.split(".")[2:]
    if not parts:
        return "base"  # the package's __init__, which stays empty
    if parts[0] in SERVER_SUBPACKAGES:
        return parts[0]
    return SERVER_TOP_MODULES.get(parts[0]) if len(parts) == 1 else None


def broken_rule(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported``, or None if it may."""
    imported_area = area_of(imported)
    if imported_area is None:
        return None  # stdlib or third-party
    importer_area = area_of(importer)
    if importer_area not in AREA_RULES:
        return f"{importer} is in no area of tests/test_architecture.py"
    if in_package(importer, CLIENT_CORE) and not (
        imported_area == "protocol" or in_package(imported, CLIENT_CORE)
    ):
        return CLIENT_CORE_RULE
    allowed, rule = AREA_RULES[importer_area]
    if imported_area != importer_area and imported_area not in allowed:
        if importer in SERVER_DOORS and imported_area == "server":
            return None
        return rule
    if importer_area == imported_area == "server":
        importer_layer, imported_layer = server_layer(importer), server_layer(imported)
        if importer_layer is None:
            return f"{importer} is in no server layer of tests/test_architecture.py"
        if imported_layer is None:
            return f"{imported} is in no server layer of tests/test_architecture.py"
        allowed, rule = SERVER_RULES[importer_layer]
        if imported_layer not in allowed:
            return rule
    return None


def python_violations(modules: Mapping[str, PyModule]) -> list[str]:
    """Every forbidden import, as ``importer -> imported (rule)``."""
    violations = []
    for name, module in sorted(modules.items()):
        for imported in sorted(imports_of(module, modules)):
            rule = broken_rule(name, imported)
            if rule is not None:
                violations.append(f"{name} -> {imported} ({rule})")
    return violations


# ---------------------------------------------------------------------------
# JavaScript: reading imports
# ---------------------------------------------------------------------------

# After these, a "/" starts a regular expression rather than a division.
_REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_AFTER_WORDS = re.compile(r"\b(?:return|typeof|case|do|else|in|of|void|yield|await)$")


def js_code(source: str) -> tuple[str, str]:
    """Two copies of the source, each as long as it: ``code``, with the comments blanked
    out, and ``skeleton``, with the insides of strings, template literals and regular
    expressions blanked too (newlines are kept in both).

    Imports are looked for in the skeleton, so nothing inside a comment or a literal
    looks like one, and their specifiers are read from ``code`` at the same place. Good
    enough for our own modules; not a JS parser (a template literal's ``${...}`` is not
    followed into).
    """
    code: list[str] = []
    skeleton: list[str] = []
    i, n = 0, len(source)
    while i < n:
        char = source[i]
        if source.startswith("//", i) or source.startswith("/*", i):
            if char == "/" and source[i + 1] == "/":
                end = source.find("\n", i)
                end = n if end == -1 else end
            else:
                end = source.find("*/", i + 2)
                end = n if end == -1 else end + 2
            blank = _blank(source[i:end])
            code.append(blank)
            skeleton.append(blank)
            i = end
        elif char in "'\"`" or (char == "/" and _starts_regex(skeleton)):
            start, i = i, i + 1
            in_class = False
            while i < n:
                if source[i] == "\\":
                    i += 2
                    continue
                if char == "/" and source[i] == "[":
                    in_class = True
                elif char == "/" and source[i] == "]":
                    in_class = False
                elif source[i] == char and not in_class:
                    break
                i += 1
            i = min(i + 1, n)
            code.append(source[start:i])
            literal = source[start:i]
            skeleton.append(literal[0] + _blank(literal[1:-1]) + literal[-1] if len(literal) > 1 else literal)
        else:
            code.append(char)
            skeleton.append(char)
            i += 1
    return "".join(code), "".join(skeleton)


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _starts_regex(skeleton: list[str]) -> bool:
    before = ""
    for part in reversed(skeleton):
        before = part + before
        if len(before.strip()) >= 8:
            break
    before = before.rstrip()
    return not before or before[-1] in _REGEX_AFTER or _REGEX_AFTER_WORDS.search(before) is not None


# `import x from "y"`, `import {a, b as c} from "y"`, `import * as x from "y"`,
# `import "y"`, `export {a} from "y"`, `export * from "y"`, `export * as x from "y"`.
_STATIC_IMPORT = re.compile(r"""(?<![\w$.])(?:import|export)\s*(?:[\w$*{},\s]*?\bfrom\s*)?(["'])(.*?)\1""")
_DYNAMIC_IMPORT = re.compile(r"(?<![\w$.])import\s*\(\s*([^)]*?)\s*\)")
_STRING_LITERAL = re.compile(r"""(["'`])([^"'`$]*)\1""")

COMPUTED = "<computed>"


def js_imports(source: str) -> list[str]:
    """The specifiers a module imports, statically or dynamically, in order; a dynamic
    import of anything but a plain string literal is returned as ``COMPUTED``."""
    code, skeleton = js_code(source)
    found: list[tuple[int, str]] = []
    for match in _STATIC_IMPORT.finditer(skeleton):
        found.append((match.start(), code[match.start(2) : match.end(2)]))
    for match in _DYNAMIC_IMPORT.finditer(skeleton):
        literal = _STRING_LITERAL.fullmatch(code[match.start(1) : match.end(1)])
        found.append((match.start(), literal.group(2) if literal else COMPUTED))
    return [specifier for _, specifier in sorted(found)]


def js_modules(web_dir: Path) -> dict[str, str]:
    """Every ``.js`` file under ``web_dir``, by its path relative to it."""
    return {
        path.relative_to(web_dir).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(web_dir.rglob("*.js"))
    }


def js_violations(modules: Mapping[str, str]) -> list[str]:
    """Every forbidden import, as ``module -> specifier (rule)``."""
    violations = []
    for name, source in sorted(modules.items()):
        for specifier in js_imports(source):
            rule = None
            if specifier == COMPUTED:
                rule = "a dynamic import of a computed specifier cannot be checked"
            elif not specifier.startswith(("./", "../")):
                rule = "only relative paths: no bare specifier or URL, no third-party code ships"
            else:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), specifier))
                if target.startswith("../"):
                    rule = "imports stay inside web/"
                elif name.startswith("protocol/") and target.startswith("app/"):
                    rule = "protocol never imports app (app -> protocol, never back)"
                elif name.startswith("protocol/") and target.startswith("core/"):
                    rule = "protocol never imports core (core -> protocol, never back)"
                elif name.startswith("core/") and not target.startswith(("core/", "protocol/")):
                    rule = "core imports only protocol and itself (never app)"
            if rule is not None:
                violations.append(f"{name} -> {specifier} ({rule})")
    return violations


# ---------------------------------------------------------------------------
# The real tree
# ---------------------------------------------------------------------------


def test_python_imports_run_one_way() -> None:
    modules = python_modules(PACKAGE_DIR)
    assert len(modules) > 50, f"only {len(modules)} Python modules found under {PACKAGE_DIR}"
    violations = python_violations(modules)
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_browser_imports_run_one_way() -> None:
    modules = js_modules(WEB_DIR)
    assert len(modules) > 20, f"only {len(modules)} JS modules found under {WEB_DIR}"
    violations = js_violations(modules)
    assert not violations, "imports against the layers:\n" + "\n".join(violations)


def test_every_module_is_placed() -> None:
    """Modules that import nothing of ours are placed too, so none escapes the rules."""
    unplaced = [
        name
        for name in python_modules(PACKAGE_DIR)
        if area_of(name) not in AREA_RULES or (area_of(name) == "server" and server_layer(name) is None)
    ]
    assert not unplaced, f"add these to AREA_RULES or SERVER_TOP_MODULES: {unplaced}"


# ---------------------------------------------------------------------------
# The checkers find what they should (so the tests above cannot pass by seeing nothing)
# ---------------------------------------------------------------------------


def python_tree(sources: Mapping[str, str]) -> dict[str, PyModule]:
    """Synthetic modules by name; a name ending in ``.__init__`` is a package."""
    modules = {}
    for key, source in sources.items():
        name = key.removesuffix(".__init__")
        modules[name] = PyModule(name, name != key, source)
    return modules


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        pytest.param(
            python_tree({"securechat.protocol.keys": "from securechat.client import api"}),
            "securechat.protocol.keys -> securechat.client (protocol imports nothing of ours)",
            id="protocol-imports-client",
        ),
        pytest.param(
            python_tree({"securechat.protocol.keys": "import securechat"}),
            "securechat.protocol.keys -> securechat (protocol imports nothing of ours)",
            id="protocol-imports-root",
        ),
        pytest.param(
            python_tree({"securechat.__init__": "from .cli import entry"}),
            "securechat -> securechat.cli (the root package imports nothing of ours)",
            id="root-imports-cli",
        ),
        pytest.param(
            python_tree({"securechat.__main__": "from .server import app"}),
            "securechat.__main__ -> securechat.server (python -m securechat only starts the CLI)",
            id="main-imports-server",
        ),
        pytest.param(
            python_tree({"securechat.client.api": "from ..server import app", "securechat.server.app": ""}),
            "securechat.client.api -> securechat.server.app (client may import only protocol)",
            id="client-imports-server-relative",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.client.api": (
                        "from typing import TYPE_CHECKING\n"
                        "if TYPE_CHECKING:\n"
                        "    from securechat.cli.main import app\n"
                    )
                }
            ),
            "securechat.client.api -> securechat.cli.main (client may import only protocol)",
            id="client-imports-cli-type-checking",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.cli.chat": "def run():\n    import securechat.server.settings\n",
                }
            ),
            "securechat.cli.chat -> securechat.server.settings (cli may import only client and protocol;"
            " only cli/serve.py reaches the server)",
            id="cli-imports-server-lazily",
        ),
        pytest.param(
            python_tree({"securechat.server.api.auth": "from securechat.cli import main"}),
            "securechat.server.api.auth -> securechat.cli (server may import only protocol)",
            id="server-imports-cli",
        ),
        pytest.param(
            python_tree({"securechat.server.storage.accounts": "from ..services import accounts"}),
            "securechat.server.storage.accounts -> securechat.server.services"
            " (storage never imports services, api or realtime)",
            id="storage-imports-services",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.server.storage.__init__": "from ..api.deps import principal",
                }
            ),
            "securechat.server.storage -> securechat.server.api.deps"
            " (storage never imports services, api or realtime)",
            id="storage-package-imports-api",
        ),
        pytest.param(
            python_tree({"securechat.server.services.messages": "from securechat.server.api import models"}),
            "securechat.server.services.messages -> securechat.server.api (services never import api (or app))",
            id="services-imports-api",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.server.api.files": "from ..storage import files",
                    "securechat.server.storage.files": "",
                }
            ),
            "securechat.server.api.files -> securechat.server.storage.files"
            " (api goes through services: never storage or app)",
            id="api-imports-storage",
        ),
        pytest.param(
            python_tree(
                {"securechat.server.realtime.broker": "from ..services.context import ServiceContext"}
            ),
            "securechat.server.realtime.broker -> securechat.server.services.context"
            " (realtime sits under the services: it imports no api, service or storage)",
            id="realtime-imports-services",
        ),
        pytest.param(
            python_tree({"securechat.server.migrations.env": "from securechat.server.services import admin"}),
            "securechat.server.migrations.env -> securechat.server.services"
            " (migrations read only storage's tables)",
            id="migrations-imports-services",
        ),
        pytest.param(
            python_tree({"securechat.server.headers": "from .storage import database"}),
            "securechat.server.headers -> securechat.server.storage"
            " (the ASGI pieces that app.py installs import only base modules)",
            id="middleware-imports-storage",
        ),
        pytest.param(
            python_tree({"securechat.server.errors": "from .services import context"}),
            "securechat.server.errors -> securechat.server.services"
            " (errors, settings, metrics and logs import no layer above them)",
            id="base-imports-services",
        ),
        pytest.param(
            python_tree({"securechat.server.services.admin": "from ..app import create_app"}),
            "securechat.server.services.admin -> securechat.server.app (services never import api (or app))",
            id="services-imports-app",
        ),
        pytest.param(
            python_tree({"securechat.server.cache": "from .errors import NotFound"}),
            "securechat.server.cache -> securechat.server.errors"
            " (securechat.server.cache is in no server layer of tests/test_architecture.py)",
            id="unplaced-server-module",
        ),
        pytest.param(
            python_tree(
                {"securechat.client.core.messages": "from ..api import Api", "securechat.client.api": ""}
            ),
            f"securechat.client.core.messages -> securechat.client.api ({CLIENT_CORE_RULE})",
            id="core-imports-client-api",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.client.core.groups": "from securechat.client.state import LocalState",
                    "securechat.client.state": "",
                }
            ),
            f"securechat.client.core.groups -> securechat.client.state ({CLIENT_CORE_RULE})",
            id="core-imports-client-state",
        ),
        pytest.param(
            python_tree(
                {
                    "securechat.client.core.__init__": "def f():\n    from ..messenger import Messenger\n",
                    "securechat.client.messenger": "",
                }
            ),
            f"securechat.client.core -> securechat.client.messenger ({CLIENT_CORE_RULE})",
            id="core-package-imports-messenger-lazily",
        ),
        pytest.param(
            python_tree({"securechat.client.core.keys": "from securechat import __version__"}),
            f"securechat.client.core.keys -> securechat ({CLIENT_CORE_RULE})",
            id="core-imports-root",
        ),
        pytest.param(
            python_tree({"securechat.plugins.emoji": "from ..client import api"}),
            "securechat.plugins.emoji -> securechat.client"
            " (securechat.plugins.emoji is in no area of tests/test_architecture.py)",
            id="unplaced-area",
        ),
    ],
)
def test_python_checker_reports(modules: dict[str, PyModule], expected: str) -> None:
    assert python_violations(modules) == [expected]


def test_python_checker_allows() -> None:
    modules = python_tree(
        {
            "securechat.cli.serve": "from ..server.app import create_app\nfrom ..server.storage import database",
            "securechat.cli.main": "from ..client import messenger\nfrom ..protocol.keys import fingerprint",
            "securechat.client.api": "from securechat.protocol import errors\nimport httpx",
            "securechat.server.app": "from .. import __version__\nfrom .storage import migrate\nfrom .api import auth",
            "securechat.server.api.auth": "from ..services import accounts\nfrom ..errors import Forbidden",
            "securechat.server.services.writer": "from ..storage import batch\nfrom ..realtime import broker",
            "securechat.server.storage.batch": "from .database import Database\nfrom ...protocol import labels",
            "securechat.server.migrations.env": "from securechat.server.storage.tables import metadata",
            "securechat.server.metrics": "from .settings import Settings",
            "securechat.protocol.keys": "from .encoding import b64\nfrom cryptography import x509",
            "securechat.client.core.messages": (
                "import re\nfrom ...protocol.envelope import Envelope\nfrom .groups import membership_start"
            ),
            "securechat.client.core.groups": "from securechat.protocol import errors",
            "securechat.client.core.__init__": "from .messages import decide_message",
            "securechat.client.messenger": "from .core import decide_message\nfrom .api import Api",
        }
    )
    assert python_violations(modules) == []


def test_python_relative_imports_resolve_against_the_package() -> None:
    modules = python_tree(
        {
            "securechat.server.services.__init__": "from . import accounts\nfrom .. import errors",
            "securechat.server.services.accounts": "from .context import ServiceContext\nfrom ... import protocol",
            "securechat.server.services.context": "",
            "securechat.server.errors": "",
            "securechat.protocol.__init__": "",
        }
    )
    assert imports_of(modules["securechat.server.services"], modules) == {
        "securechat.server.services.accounts",
        "securechat.server.errors",
    }
    assert imports_of(modules["securechat.server.services.accounts"], modules) == {
        "securechat.server.services.context",
        "securechat.protocol",
    }
    # A name that is not a module (a function, a constant) leaves the package it came from.
    assert imports_of(PyModule("securechat.server.app", False, "from .. import __version__"), modules) == {
        "securechat"
    }
    with pytest.raises(ValueError, match="beyond the top-level package"):
        imports_of(PyModule("securechat.cli", True, "from ... import x"), modules)


def test_js_imports_are_read_in_every_form() -> None:
    source = """
        // import { fake } from "line-comment";
        /* import "block-comment"; */
        /**
         * @param {import("./api.js").Api} api  (type-only: not an import)
         * @returns {Promise<import("lit").Thing>}
         */
        import { a, b as c } from "./a.js";
        import {
          d,
          e,
        } from '../protocol/index.js';
        import * as store from "./store.js";
        import "./side-effect.js";
        export * from "./errors.js";
        export * as labels from "./labels.js";
        export { f } from "./f.js";
        export const URL = "https://example.org/x"; // a string, not an import
        const pattern = /["']import "nope"/g;
        const half = total / 2; const other = count / 3;
        const module = await import("./lazy.js");
        const computed = await import(`./${name}.js`);
        import.meta.url;
    """
    assert js_imports(source) == [
        "./a.js",
        "../protocol/index.js",
        "./store.js",
        "./side-effect.js",
        "./errors.js",
        "./labels.js",
        "./f.js",
        "./lazy.js",
        COMPUTED,
    ]


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        pytest.param(
            {"protocol/keys.js": 'import { api } from "../app/api.js";'},
            "protocol/keys.js -> ../app/api.js (protocol never imports app (app -> protocol, never back))",
            id="protocol-imports-app",
        ),
        pytest.param(
            {"protocol/index.js": 'export * from "../app/store.js";'},
            "protocol/index.js -> ../app/store.js (protocol never imports app (app -> protocol, never back))",
            id="protocol-reexports-app",
        ),
        pytest.param(
            {"protocol/envelope.js": 'import { decideMessage } from "../core/messages.js";'},
            "protocol/envelope.js -> ../core/messages.js (protocol never imports core (core -> protocol, never back))",
            id="protocol-imports-core",
        ),
        pytest.param(
            {"core/messages.js": 'import { store } from "../app/store.js";'},
            "core/messages.js -> ../app/store.js (core imports only protocol and itself (never app))",
            id="core-imports-app",
        ),
        pytest.param(
            {"core/index.js": 'export * from "../app/groups.js";'},
            "core/index.js -> ../app/groups.js (core imports only protocol and itself (never app))",
            id="core-reexports-app",
        ),
        pytest.param(
            {"core/groups.js": 'const view = await import("../ui/view.js");'},
            "core/groups.js -> ../ui/view.js (core imports only protocol and itself (never app))",
            id="core-imports-another-directory",
        ),
        pytest.param(
            {"app/main.js": 'import { html } from "lit";'},
            "app/main.js -> lit (only relative paths: no bare specifier or URL, no third-party code ships)",
            id="bare-specifier",
        ),
        pytest.param(
            {"app/main.js": 'import confetti from "https://cdn.example.org/confetti.js";'},
            "app/main.js -> https://cdn.example.org/confetti.js"
            " (only relative paths: no bare specifier or URL, no third-party code ships)",
            id="url",
        ),
        pytest.param(
            {"app/main.js": 'import "/static/app/dom.js";'},
            "app/main.js -> /static/app/dom.js"
            " (only relative paths: no bare specifier or URL, no third-party code ships)",
            id="absolute-path",
        ),
        pytest.param(
            {"app/main.js": 'const lit = await import("lit");'},
            "app/main.js -> lit (only relative paths: no bare specifier or URL, no third-party code ships)",
            id="dynamic-bare-specifier",
        ),
        pytest.param(
            {"app/main.js": "const mod = await import(where);"},
            f"app/main.js -> {COMPUTED} (a dynamic import of a computed specifier cannot be checked)",
            id="dynamic-computed",
        ),
        pytest.param(
            {"app/main.js": 'import { x } from "../../server/x.js";'},
            "app/main.js -> ../../server/x.js (imports stay inside web/)",
            id="escapes-web",
        ),
    ],
)
def test_js_checker_reports(modules: dict[str, str], expected: str) -> None:
    assert js_violations(modules) == [expected]


def test_js_checker_allows() -> None:
    modules = {
        "app/main.js": 'import { api } from "./api.js";\nimport { b64 } from "../protocol/index.js";',
        "app/messenger.js": 'import { decideMessage } from "../core/index.js";',
        "core/messages.js": (
            'import { Envelope } from "../protocol/index.js";\nimport { refused } from "./reasons.js";'
        ),
        "core/index.js": 'export * from "./messages.js";',
        "protocol/keys.js": (
            'import { b64 } from "./encoding.js";\n/** @param {import("../app/api.js").Api} api */'
        ),
    }
    assert js_violations(modules) == []
