"""Reading scenarios: YAML in, ``--set`` overrides, validation, errors that name the field."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from netsim.scenario.schema import Scenario

DEFAULT_SCENARIO = "default"


@dataclass(frozen=True)
class ScenarioProblem:
    """One thing wrong with a scenario: where (a dotted field path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ScenarioError(Exception):
    """A scenario the user gave cannot be used; every problem is listed, none is a traceback."""

    def __init__(self, source: str, problems: list[ScenarioProblem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s):"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


def packaged_scenario_text(name: str = DEFAULT_SCENARIO) -> str:
    """The text of a scenario shipped inside the package (``netsim/data/<name>.yaml``)."""
    return resources.files("netsim").joinpath("data", f"{name}.yaml").read_text("utf-8")


def read_raw(path: str | Path | None) -> tuple[str, dict[str, Any]]:
    """Parse a scenario file (or the embedded default world when ``path`` is None) into a dict."""
    if path is None:
        source, text = f"<embedded {DEFAULT_SCENARIO} world>", packaged_scenario_text()
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ScenarioError(source, [ScenarioProblem("", exc.strerror or str(exc))]) from None
        except UnicodeDecodeError:
            raise ScenarioError(source, [ScenarioProblem("", "is not UTF-8 text")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        problems = [ScenarioProblem(where, f"not valid YAML: {problem}")]
        raise ScenarioError(source, problems) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, [ScenarioProblem("", "a scenario must be a YAML mapping")])
    return source, data


def parse_overrides(overrides: list[str], source: str) -> dict[str, Any]:
    """``dotted.key=value`` strings to a mapping; values are read as YAML scalars."""
    values: dict[str, Any] = {}
    problems = []
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            problems.append(ScenarioProblem(f"--set {item}", "expected dotted.key=value"))
            continue
        try:
            values[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            values[key] = text
    if problems:
        raise ScenarioError(source, problems)
    return values


def set_values(data: dict[str, Any], values: dict[str, Any], source: str,
               where: str = "--set") -> dict[str, Any]:
    """A copy of ``data`` with each dotted key set; list items by index, by name, or all of
    them with ``*`` (``isps.*.policies.submission``)."""
    data = copy.deepcopy(data)
    problems = []
    for key, value in values.items():
        try:
            _set_path(data, key.split("."), value)
        except (KeyError, IndexError, TypeError) as exc:
            problems.append(ScenarioProblem(f"{where} {key}",
                                            str(exc.args[0]) if exc.args else ""))
    if problems:
        raise ScenarioError(source, problems)
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (list items as :func:`set_values` addresses them)."""
    return set_values(data, parse_overrides(overrides, source), source)


def _set_path(node: Any, parts: list[str], value: Any, done: tuple[str, ...] = ()) -> None:
    head, *rest = parts
    where = ".".join((*done, head))
    if head == "*":   # every item of a list
        if not isinstance(node, list):
            raise TypeError(f"{where}: * stands for every item of a list, and "
                            f"{'.'.join(done) or 'the scenario'} is not a list")
        for i in range(len(node)):
            if rest:
                _set_path(node[i], rest, value, (*done, str(i)))
            else:
                node[i] = copy.deepcopy(value)
        return
    if rest:
        _set_path(_child(node, head, where, create=True), rest, value, (*done, head))
    elif isinstance(node, list):
        node[_list_index(node, head, where)] = copy.deepcopy(value)
    elif isinstance(node, dict):
        node[head] = copy.deepcopy(value)
    else:
        raise TypeError(f"{'.'.join(done)} is not a mapping or a list")


def _child(node: Any, part: str, where: str, *, create: bool) -> Any:
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            if not create:
                raise KeyError(f"no field {where}")
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        return node[_list_index(node, part, where)]
    raise TypeError(f"{where} is inside a value that is not a mapping or a list")


def _list_index(items: list[Any], part: str, where: str) -> int:
    if part.isdigit():
        if int(part) >= len(items):
            raise IndexError(f"{where}: index out of range (the list has {len(items)} items)")
        return int(part)
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise KeyError(f"{where}: no list item named {part!r}")


def validate(data: dict[str, Any], source: str) -> Scenario:
    """Validate a raw scenario dict, turning pydantic's errors into ScenarioProblems."""
    if "arms" in data and "isps" not in data:
        command = "netsim sensitivity" if "parameters" in data else "netsim sweep"
        raise ScenarioError(source, [ScenarioProblem(
            "", f"this is a study (it has arms), not a scenario: run it with `{command}`")])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [ScenarioProblem(_dotted(err["loc"], data), _message(err, Scenario))
                    for err in exc.errors()]
        raise ScenarioError(source, problems) from None


def nearest_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The field of ``model`` nearest to the unknown name at the end of ``loc`` (where the
    fields are those of the section the name sits in), or None when none is near."""
    node: Any = model
    for part in loc[:-1]:
        if isinstance(part, str):
            fields = getattr(node, "model_fields", {})
            if part not in fields:
                return None
            node = _model_in(fields[part].annotation)
    fields = getattr(node, "model_fields", None)
    if not fields or not isinstance(loc[-1], str):
        return None
    found = difflib.get_close_matches(loc[-1], list(fields), n=1, cutoff=0.6)
    return found[0] if found else None


def _model_in(annotation: Any) -> Any:
    """The section (a model class) a field's annotation holds: itself, or inside an
    Optional, a list or an Annotated; None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple[int | str, ...], data: Any = None) -> str:
    """``isps[2] (isp-c).subscribers``: a list item by its index, and by its name when it has
    one, read from the raw ``data`` the error was found in."""
    out = ""
    node = data
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        node = _item(node, part)
        if isinstance(part, int) and isinstance(node, dict):
            name = node.get("name")
            if isinstance(name, str) and name:
                out += f" ({name})"
    return out


def _item(node: Any, part: int | str) -> Any:
    """The child of a raw scenario node at one step of an error's location, or None."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _message(err: Any, model: type[BaseModel]) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        near = nearest_field(model, tuple(err["loc"]))
        return (f"unknown field (did you mean {near!r}?)" if near
                else "unknown field (check its spelling; see docs/scenario.md)")
    if err["type"] == "missing":
        return "required field is missing"
    if "input" in err and err["type"] not in ("model_type",) and not isinstance(
            err["input"], (dict, list)):
        return f"{msg} (got {err['input']!r})"
    return msg


def load_scenario(path: str | Path | None = None, overrides: list[str] | None = None) -> Scenario:
    """Read, override and validate a scenario; ``path=None`` gives the embedded default world."""
    source, data = read_raw(path)
    if overrides:
        data = apply_overrides(data, overrides, source)
    return validate(data, source)


def scenario_yaml(scenario: Scenario) -> str:
    """The resolved scenario as YAML: every field, defaults included, so a run can be repeated."""
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
