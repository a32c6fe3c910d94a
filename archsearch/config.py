"""Configuration: Hydra composition of the root config with the ``search_spaces/`` and ``strategies/`` groups.

Nothing outside this module and :mod:`archsearch.cli` imports Hydra. Config groups are found in, in
order of precedence: ``./search_spaces`` and ``./strategies`` in the current directory (a user's own
spaces beside their project), the copies installed inside the package, and a source checkout.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archsearch.errors import ConfigError, printable

PACKAGE_CONF = Path(__file__).parent / "conf"
SOURCE_ROOT = Path(__file__).parent.parent

# CLI key -> directory of its config group. Keys whose directory differs are composed with a package
# override (`search_spaces@space=kan`), so users type `space=kan`.
GROUPS = {"space": "search_spaces", "strategy": "strategies", "task": "task", "executor": "executor",
          "fidelity": "fidelity"}
PLURALS = {"space": "spaces", "strategy": "strategies", "task": "tasks", "executor": "executors",
           "fidelity": "fidelity policies"}

DIRECTION_ALIASES = {"max": "maximize", "maximize": "maximize", "min": "minimize", "minimize": "minimize"}


def config_roots(cwd: Path | None = None) -> list[Path]:
    """Directories holding config groups, highest precedence first."""
    cwd = Path.cwd() if cwd is None else cwd
    roots = []
    if any((cwd / GROUPS[g]).is_dir() for g in ("space", "strategy")):
        roots.append(cwd.resolve())
    for root in (PACKAGE_CONF, SOURCE_ROOT):
        if (root / "search_spaces").is_dir() and root.resolve() not in roots:
            roots.append(root.resolve())
    if PACKAGE_CONF.resolve() not in roots:
        roots.append(PACKAGE_CONF.resolve())
    return roots


def options(key: str) -> list[str]:
    """The option names of config group ``key`` (``space``, ``strategy``, ``task``, ``executor``)."""
    names: set[str] = set()
    for root in config_roots():
        names.update(p.stem for p in (root / GROUPS[key]).glob("*.yaml"))
    return sorted(names)


def option_descriptions(key: str) -> dict[str, str]:
    """One line per option: its ``description`` field, or the first comment line of its file."""
    from omegaconf import OmegaConf

    found: dict[str, str] = {}
    for root in reversed(config_roots()):  # higher precedence overwrites
        for path in sorted((root / GROUPS[key]).glob("*.yaml")):
            text = path.read_text()
            data = OmegaConf.to_container(OmegaConf.create(text)) if text.strip() else {}
            line = str(data.get("description", "") or "") if isinstance(data, dict) else ""
            if not line:
                comments = [ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")]
                line = comments[0] if comments else ""
            found[path.stem] = line
    return dict(sorted(found.items()))


_OVERRIDE_KEY = re.compile(r"^([+~]{0,2})([A-Za-z_][\w.]*)(@[\w.]+)?=(.*)$", re.S)
# Hydra's message for an override it cannot lex: the override, then a caret under the refused character.
_LEXER_PREFIX = "LexerNoViableAltException: "
_LEXER_ERROR = re.compile(re.escape(_LEXER_PREFIX) + r"(.*)\n( *)\^", re.S)


def _refuse_repeated_keys(overrides: Sequence[str]) -> None:
    """A key given twice is almost always bash's brace expansion: ``k={a,b}`` arrives as ``k=a k=b``."""
    seen: dict[str, str] = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or key.startswith(("+", "~")):
            continue
        if key in seen:
            values = [printable(o.partition("=")[2]) for o in overrides if o.partition("=")[0] == key]
            raise ConfigError(
                f"{key} is given {len(values)} times ({' '.join(f'{key}={v}' for v in values)}): the shell's brace "
                f"expansion probably split {key}={{{','.join(values)}}}; quote the whole override, e.g. "
                f"'{key}=[{','.join(values)}]'")
        seen[key] = value


def default_task(overrides: Sequence[str]) -> str | None:
    """The task the chosen space names with ``default_task:`` (``kan`` -> ``kan_toy``), if any."""
    from omegaconf import OmegaConf

    space = next((o.partition("=")[2] for o in overrides if o.startswith("space=")), "mlp")
    for root in config_roots():
        path = root / GROUPS["space"] / f"{space}.yaml"
        if path.exists():
            loaded = OmegaConf.to_container(OmegaConf.load(path))
            value = loaded.get("default_task") if isinstance(loaded, dict) else None
            return str(value) if value else None
    return None


def _translate(overrides: Sequence[str]) -> list[str]:
    """Check group choices against the options on disk and map ``space=x`` to Hydra's package syntax."""
    _refuse_repeated_keys(overrides)
    if not any(o.startswith("task=") for o in overrides) and (task := default_task(overrides)):
        overrides = [*overrides, f"task={task}"]
    translated = []
    for override in overrides:
        match = _OVERRIDE_KEY.match(override)
        if not match:
            raise ConfigError(
                f"malformed override {override!r}: write key=value, e.g. space=mlp budget=20 space.depth.high=6"
            )
        prefix, key, package, value = match.groups()
        if key in GROUPS and not package and not prefix:
            valid = options(key)
            if value not in valid:
                raise ConfigError(f"unknown {key} {value!r}; valid {PLURALS[key]}: {', '.join(valid)}")
            if GROUPS[key] != key:
                override = f"{GROUPS[key]}@{key}={value}"
        translated.append(override)
    return translated


def compose(overrides: Sequence[str] = ()) -> Any:
    """The fully composed config (an OmegaConf ``DictConfig``) for these ``key=value`` overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    roots = ",".join(f"file://{root}" for root in config_roots())
    translated = _translate(overrides)
    for note in note_shadowing(overrides):
        print(note, file=sys.stderr)
    try:
        with initialize_config_dir(config_dir=str(PACKAGE_CONF.resolve()), version_base=None):
            return hydra_compose(config_name="config", overrides=[*translated, f"hydra.searchpath=[{roots}]"])
    except (HydraException, OmegaConfBaseException) as exc:
        message = _one_line(exc)
        unknown = re.match(r"Could not override '([\w.]+)'", message)
        if unknown and "not in struct" in str(exc.__cause__ or exc):
            message = _unknown_key(unknown.group(1), overrides) or message
        raise ConfigError(message) from None


def validate(cfg: Any) -> None:
    """Check a composed config against the schema of every section (:mod:`archsearch.schema`)."""
    from omegaconf import DictConfig, OmegaConf

    from archsearch import schema

    if not isinstance(cfg, DictConfig):
        raise ConfigError("a configuration must be a mapping of sections")
    try:
        plain: Any = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # an interpolation that does not resolve
        raise ConfigError(f"configuration: {_one_line(exc)}") from None
    schema.validate(plain)
    for key in ("space", "strategy"):
        if "_target_" not in plain[key]:
            raise ConfigError(f"{key} config has no _target_ naming the class to create")


def _unknown_key(key: str, overrides: Sequence[str]) -> str | None:
    """'space.depht.high' -> "unknown option 'space.depht'; space options: blocks, depth, ..."."""
    from omegaconf import OmegaConf

    others = [o for o in overrides if not o.lstrip("+~").startswith(key)]
    try:
        cfg = compose(others)
    except ConfigError:
        return None
    parts = key.split(".")
    if len(parts) == 1 and OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
        nested = [f"{section}.{key}" for section in cfg if hasattr(cfg[section], "keys") and key in cfg[section]]
        if nested:
            return (f"unknown option {key!r}; did you mean {' or '.join(f'{n}=' for n in nested)}? "
                    f"(top-level keys: {', '.join(k for k in cfg)})")
    for depth in range(1, len(parts) + 1):
        parent, missing = ".".join(parts[:depth - 1]), ".".join(parts[:depth])
        if OmegaConf.select(cfg, missing, default=_MISSING) is _MISSING:
            node = OmegaConf.select(cfg, parent) if parent else cfg
            if node is None or not hasattr(node, "keys"):
                return None
            valid = ", ".join(k for k in node if k not in ("_target_", "name", "description"))
            where = f"{parent} options" if parent else "top-level keys"
            return f"unknown option {missing!r}; {where}: {valid} (prefix with + to add a new key)"
    return None


_MISSING = object()


def _one_line(exc: BaseException) -> str:
    lexer = _LEXER_ERROR.match(str(exc))
    if lexer:
        override, position = lexer.group(1), len(lexer.group(2)) - len(_LEXER_PREFIX)
        refused = repr(override[position]) if 0 <= position < len(override) else "the end"
        return (f"malformed override {override!r}: the override syntax does not allow {refused} at character "
                f"{position + 1} (an unclosed quote or a line break?); see `archsearch run --help` for the syntax")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    message = lines[0]
    hint = next((ln for ln in lines[1:] if ln.startswith(("Key ", "To append"))), "")
    if message.startswith("Could not override") and hint:
        message = f"{message} {hint}"
    if "no viable alternative" in message or "mismatched input" in message:
        message = f"malformed override: {message} (see `archsearch run --help` for the syntax)"
    return message


def parse_objectives(value: Any) -> dict[str, str] | None:
    """``{name: dir}``, ``["name:max", ...]`` or ``None`` -> ``{name: "maximize" | "minimize"}``."""
    if value is None:
        return None
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    pairs: list[tuple[str, Any]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list | tuple):
        pairs = []
        for item in value:
            if not isinstance(item, str) or ":" not in item:
                raise ConfigError(f"objective {item!r} must be written name:max or name:min")
            name, _, direction = item.partition(":")
            pairs.append((name.strip(), direction.strip()))
    elif isinstance(value, str) and ":" in value:  # objectives=val_accuracy:max, a single objective
        return parse_objectives([value])
    else:
        raise ConfigError(f"objectives must be a mapping or a list like [val_accuracy:max,n_params:min], got {value!r}")
    objectives = {}
    for name, direction in pairs:
        if str(direction).lower() not in DIRECTION_ALIASES:
            raise ConfigError(f"objective {name!r} has direction {direction!r}; use maximize/max or minimize/min")
        objectives[str(name)] = DIRECTION_ALIASES[str(direction).lower()]
    if not objectives:
        raise ConfigError("objectives is empty; give at least one, e.g. {val_accuracy: maximize}")
    return objectives


CONFIG_ONLY_KEYS = ("default_task",)  # read by archsearch from a space's YAML, not passed to its class


OWN_PACKAGE = "archsearch"


def _module_allowed(target: str, allowed: Sequence[str]) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in (OWN_PACKAGE, *allowed))


def check_targets(data: Any, what: str, allow: Sequence[str] = ()) -> None:
    """Refuse a ``_target_`` that names code outside archsearch (or the modules in ``allow_targets``).

    The top-level ``_target_`` must be an archsearch class unless its module is allowed; nested
    ``_target_`` entries (which Hydra would call while building the object) are refused unless allowed.
    A YAML file found in the working directory, or a run directory received from someone else, can
    therefore not make archsearch run code the user did not name.
    """
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                if key == "_target_":
                    target = str(value)
                    nested = bool(path)
                    own = _module_allowed(target, ()) and not nested
                    if not (own or any(_module_allowed(target, (m,)) for m in allow)):
                        module = target.rsplit(".", 1)[0]
                        raise ConfigError(
                            f"{what}: {where}={target!r} names code outside archsearch's own classes; if it is "
                            f"yours and you trust it, allow its module with allow_targets=[{module}]")
                else:
                    walk(value, where)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(data, "")


def instantiate(node: Any, what: str, allow: Sequence[str] = (), **extra: Any) -> Any:
    """Create the object a config node's ``_target_`` names; bad options name the valid ones.

    Only archsearch's own classes (and modules listed in ``allow``) may be named: see :func:`check_targets`.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import get_class
    from hydra.utils import instantiate as hydra_instantiate
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(node, resolve=True) if not isinstance(node, dict) else dict(node)
    if not isinstance(container, dict):
        raise ConfigError(f"{what} config must be a mapping of options, got {container!r}")
    data: dict[str, Any] = {str(k): v for k, v in container.items()}
    for key in CONFIG_ONLY_KEYS:
        data.pop(key, None)
    target = data.get("_target_")
    if not target:
        raise ConfigError(f"{what} config has no _target_ naming the class to create")
    check_targets(data, what, allow)
    try:
        cls = get_class(target)
    except Exception:
        raise ConfigError(f"{what} config names _target_ {target!r}, which cannot be imported") from None
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(k for k in data if k != "_target_" and k not in accepted)
    if unknown:
        valid = ", ".join(sorted(accepted - set(extra)))
        raise ConfigError(f"{what} has no option(s) {', '.join(unknown)}; its options are: {valid}")
    try:
        return hydra_instantiate(data, _convert_="all", **extra)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, ConfigError):
            raise cause from None
        raise ConfigError(f"cannot create {what}: {_one_line(cause)}") from None


def shadowing(key: str, name: str, cwd: Path | None = None) -> Path | None:
    """The working directory's YAML for option ``name`` of group ``key`` when it hides a built-in one."""
    cwd = Path.cwd() if cwd is None else cwd
    local = cwd / GROUPS[key] / f"{name}.yaml"
    if not local.is_file():
        return None
    builtin = [root / GROUPS[key] / f"{name}.yaml" for root in (PACKAGE_CONF, SOURCE_ROOT)]
    if any(b.is_file() and b.resolve() != local.resolve() for b in builtin):
        return local
    return None


def note_shadowing(overrides: Sequence[str]) -> list[str]:
    """One line per space or strategy chosen from the working directory over a built-in of that name."""
    chosen = {"space": "mlp", "strategy": "model"}
    for override in overrides:
        match = _OVERRIDE_KEY.match(override)
        if match and match.group(2) in chosen and not match.group(1) and not match.group(3):
            chosen[match.group(2)] = match.group(4)
    notes = []
    for key, name in chosen.items():
        local = shadowing(key, name)
        if local is not None:
            notes.append(f"archsearch: note: {key} {name!r} comes from {local}, which replaces the built-in "
                         f"{key} of that name (rename the file to keep both)")
    return notes


def to_yaml(cfg: Any) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def to_container(cfg: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
