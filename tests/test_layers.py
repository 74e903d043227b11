"""The layers (docs/model.md "Layers"): each imports only those below it, the engines are
sans-I/O, and the mail layer's modules take the narrow protocols of a server they use, not
``netsim.mail.server``.

Imports are read from the source, so those under ``if TYPE_CHECKING:`` and inside functions
count: an import cycle hidden from the interpreter is still a cycle.
"""

from __future__ import annotations

import ast
import graphlib
import inspect
import typing
from pathlib import Path

import pytest

import netsim
from netsim.mail.consult import ConsultedServer
from netsim.mail.facts import PolicyServer
from netsim.mail.hooks import POP3HookServer, SMTPHookServer
from netsim.mail.queue import QueueServer
from netsim.mail.retrieval_session import IMAPSessionServer, POP3SessionServer
from netsim.mail.session import SessionSettings, SMTPSessionServer
from netsim.world import World
from tests.conftest import tiny_scenario

ROOT = Path(netsim.__file__).parent
CHAIN = ("protocols", "net", "mail", "world", "experiments", "cli")
SHARED = ("draws", "errors", "lazy", "runs")   # leaf modules any layer may use


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Every module an import statement of module ``name`` names, wherever it stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            found.add(target)
            # ``from netsim.mail import server`` imports the module server
            found.update(f"{target}.{a.name}" for a in node.names
                         if f"{target}.{a.name}" in MODULES)
    return found


IMPORTS = {name: _imports(name) for name in MODULES}


def _layer(module: str) -> str | None:
    """The part of netsim a module belongs to (``netsim.mail.server``: ``mail``)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "netsim" and len(parts) > 1 else None


def _of(layer: str) -> list[str]:
    return [m for m in MODULES if _layer(m) == layer]


def test_the_source_is_read():
    assert "netsim.mail.server" in IMPORTS["netsim.mail"]
    assert "netsim.protocols.smtp_server" in IMPORTS["netsim.protocols"]   # relative
    assert "netsim.mail.ledger" in IMPORTS["netsim.mail.trace"]           # TYPE_CHECKING


@pytest.mark.parametrize("layer", CHAIN)
def test_a_layer_imports_no_layer_above_it(layer: str):
    above = set(CHAIN[CHAIN.index(layer) + 1:])
    wrong = {(m, t) for m in _of(layer) for t in IMPORTS[m] if _layer(t) in above}
    assert not wrong


@pytest.mark.parametrize("layer", ["protocols", "net", "mail"])
def test_a_lower_layer_imports_only_layers_below_it_and_shared_modules(layer: str):
    allowed = {*CHAIN[: CHAIN.index(layer) + 1], *SHARED}
    wrong = {(m, t) for m in _of(layer) for t in IMPORTS[m]
             if t.split(".")[0] == "netsim" and _layer(t) not in allowed}
    assert not wrong


def test_shared_modules_import_nothing_of_netsim():
    for name in SHARED:
        assert not {t for t in IMPORTS[f"netsim.{name}"] if t.split(".")[0] == "netsim"}


def test_the_engines_are_sans_io():
    # no SimPy, no clock, no sockets
    io = {"simpy", "asyncio", "socket", "selectors", "time"}
    wrong = {(m, t) for m in _of("protocols") for t in IMPORTS[m] if t.split(".")[0] in io}
    assert not wrong


def test_the_mail_layer_has_no_import_cycles():
    mail = [m for m in _of("mail") if m != "netsim.mail"]   # the package only re-exports
    graph = {m: {t for t in IMPORTS[m] if t in mail} for m in mail}
    graphlib.TopologicalSorter(graph).prepare()   # CycleError names the cycle


def test_only_the_package_and_layers_above_import_the_mail_server():
    # the mail layer's modules take a protocol of what they use of a server
    server = {"netsim.mail.server", "netsim.mail"}   # the package imports the server
    wrong = {(m, t) for m in _of("mail") if m not in server
             for t in IMPORTS[m] if t in server}
    assert not wrong


def _members(protocol: type) -> set[str]:
    """The attributes and methods a protocol lists, with those of the protocols it extends."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if getattr(cls, "_is_protocol", False) and cls is not typing.Protocol:
            names.update(inspect.get_annotations(cls))
            names.update(n for n in vars(cls) if not n.startswith("_"))
    return names


@pytest.fixture(scope="module")
def server():
    return World(tiny_scenario(users={"sends_per_day": 0})).servers[0]


def test_what_a_policy_may_read_of_its_server():
    assert _members(PolicyServer) == {"now", "domain", "users", "own_subnets", "network",
                                      "user_index", "pop_login"}


@pytest.mark.parametrize("protocol", [
    PolicyServer, ConsultedServer, SMTPHookServer, POP3HookServer, SMTPSessionServer,
    POP3SessionServer, IMAPSessionServer, QueueServer])
def test_a_mail_server_has_what_each_protocol_of_a_server_lists(server, protocol: type):
    # mypy checks this where a MailServer is passed as one; the session adapters take theirs
    # from ``conn.listener``, which the network layer cannot type
    assert {n for n in _members(protocol) if not hasattr(server, n)} == set()


def test_server_settings_have_what_the_sessions_read(server):
    assert {n for n in _members(SessionSettings) if not hasattr(server.settings, n)} == set()
