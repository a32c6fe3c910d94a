"""``archsearch list KIND NAME``: every option of one space, strategy, task, executor or block.

An option's description comes from the comment beside it in the YAML file, else from the ``Args:``
section of the docstring of the class or function that takes it; its default from the YAML file, else
from that signature. For a space, the YAML value *is* the set of choices the search draws from.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError

Row = tuple[str, str, str, str]  # option, choices, default, what it is
GROUP_OF = {"spaces": "space", "strategies": "strategy", "tasks": "task", "executors": "executor"}
HIDDEN = ("_target_", "name", "description", "default_task")


def describe_one(what: str, name: str) -> tuple[str, list[Row], str]:
    """Title, one row per option, and a closing note, for ``archsearch list WHAT NAME``."""
    if what == "blocks":
        return _block(name)
    if what not in GROUP_OF:
        raise ConfigError(f"`archsearch list {what}` takes no name; names are listed for spaces, strategies, "
                          "tasks, executors and blocks")
    return _config_option(GROUP_OF[what], name)


def docstring_args(obj: Any) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring as ``{name: one-line text}``."""
    doc = inspect.getdoc(obj) or ""
    args: dict[str, str] = {}
    inside, current = False, ""
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            inside = True
            continue
        if inside:
            if line and not line.startswith(" "):
                break
            match = re.match(r"^    (\*{0,2}\w+)(?: \([^)]*\))?: ?(.*)$", line)
            if match:
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return {k: v.replace("``", "") for k, v in args.items()}


def yaml_comments(text: str) -> dict[str, str]:
    """``{dotted.key: comment}`` for ``key: value  # comment`` lines, nested by indentation."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        match = re.match(r"^(\s*)([A-Za-z_][\w]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        stack.append((indent, key))
        if "#" in rest:
            comments[path] = rest.split("#", 1)[1].strip()
    return comments


def domain_text(value: Any) -> str:
    """A space domain as a reader types it: ``relu | gelu``, ``1..4 (integers)``, or the one fixed value."""
    if isinstance(value, Mapping) and {"low", "high"} <= set(value):
        kind = "integers" if all(isinstance(value[k], int) for k in ("low", "high")) else "reals"
        extra = ", log scale" if value.get("log") else ""
        step = f", step {value['step']}" if value.get("step") else ""
        return f"{value['low']}..{value['high']} ({kind}{step}{extra})"
    if isinstance(value, list | tuple):
        return " | ".join(str(v) for v in value) if len(value) > 1 else f"{value[0] if value else ''} (fixed)"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {domain_text(v)}" for k, v in value.items()) + "}"
    return f"{value} (fixed)"


def _config_file(group: str, name: str) -> Path:
    from archsearch import config

    for root in config.config_roots():
        path = root / config.GROUPS[group] / f"{name}.yaml"
        if path.exists():
            return path
    valid = ", ".join(config.options(group))
    raise ConfigError(f"unknown {group} {name!r}; valid {config.PLURALS[group]}: {valid}")


def _target(group: str, name: str, data: Mapping[str, Any]) -> Callable[..., Any] | None:
    """The class or function the option creates, to read its signature and docstring."""
    if group == "task":
        from archsearch.tasks import TASKS

        return TASKS.get(name) if name in TASKS else None
    if group == "executor":
        from archsearch.execution import EXECUTORS

        return EXECUTORS.get(name)
    target = data.get("_target_")
    if not target:
        return None
    from hydra.utils import get_class

    try:
        return get_class(str(target))
    except Exception:
        return None


def _config_option(group: str, name: str) -> tuple[str, list[Row], str]:
    from omegaconf import OmegaConf

    path = _config_file(group, name)
    text = path.read_text()
    loaded = OmegaConf.to_container(OmegaConf.create(text)) if text.strip() else {}
    data: dict[str, Any] = {str(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    comments = yaml_comments(text)
    target = _target(group, name, data)
    documented = docstring_args(target) if target is not None else {}
    signature = _parameters(target)
    rows: list[Row] = []
    space = group == "space"
    for key, value in data.items():
        if key in HIDDEN:
            continue
        if space and key == "block_params" and isinstance(value, Mapping):
            for kind, params in value.items():
                for param, domain in (params or {}).items():
                    dotted = f"block_params.{kind}.{param}"
                    rows.append((f"space.{dotted}", domain_text(domain), _default_of_block(kind, param),
                                 comments.get(dotted) or comments.get(f"block_params.{kind}", "")))
            continue
        what = comments.get(key) or documented.get(key, "")
        if space:
            rows.append((f"space.{key}", domain_text(value), _shown(signature.get(key, ""), space=True), what))
        else:
            rows.append((f"{group}.{key}", "", _shown(value), what))
    for key, default in signature.items():  # options the file leaves at the class's default
        if key not in data and key not in HIDDEN:
            rows.append((f"{group}.{key}", domain_text(default) if space else "", _shown(default, space),
                         documented.get(key, "")))
    title = f"{group} {name} ({path})"
    note = str(data.get("description") or "")
    if space:
        note = (note + "; " if note else "") + ("choices: what the search draws from (a | b: one of them, "
                                               "low..high: a range); override any, e.g. space.depth.high=6")
        if data.get("default_task"):
            note += f"; runs on task {data['default_task']} unless task= is given"
    return title, rows, note


def _parameters(target: Any) -> dict[str, Any]:
    """Keyword parameters and their defaults (``""`` where there is none), minus what archsearch passes."""
    if target is None:
        return {}
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    skip = {"self", "space", "objectives", "seed", "dim", "n_tokens", "name", "description"}
    return {n: ("" if p.default is inspect.Parameter.empty else p.default) for n, p in params.items()
            if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _shown(value: Any, space: bool = False) -> str:
    """A default as YAML writes it; a space's domain default as its choices."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if space and isinstance(value, list | tuple | Mapping):
        return domain_text(value).removesuffix(" (fixed)")
    return str(value)


def _default_of_block(kind: str, param: str) -> str:
    from archsearch.blocks import BLOCKS

    if kind not in BLOCKS:
        return ""
    return _shown(_parameters(BLOCKS.get(kind)).get(param, ""))


def _block(name: str) -> tuple[str, list[Row], str]:
    from archsearch import config
    from archsearch.blocks import BLOCKS

    cls = BLOCKS.get(name)
    documented = {**docstring_args(cls.__init__), **docstring_args(cls)}
    in_spaces: dict[str, list[str]] = {}
    from omegaconf import OmegaConf

    for space in config.options("space"):
        data = OmegaConf.to_container(OmegaConf.load(_config_file("space", space)))
        if not isinstance(data, dict):
            continue
        for param, domain in ((data.get("block_params") or {}).get(name) or {}).items():
            in_spaces.setdefault(param, []).append(f"{space}: {domain_text(domain)}")
    uses_activation = BLOCKS.info(name).uses_activation
    rows: list[Row] = []
    for param, default in _parameters(cls).items():
        if param == "activation" and not uses_activation:
            continue
        choices = "; ".join(in_spaces.get(param, []))
        rows.append((param, choices, _shown(default), documented.get(param, "")))
    note = BLOCKS.describe()[name]
    if uses_activation:
        note += "; its activation is a gene of its own (space.activation)"
    note += "; choices: the domains the built-in spaces give it (space.block_params." + name + ".PARAM)"
    return f"block {name} ({cls.__module__}.{cls.__name__})", rows, note
