"""docker-compose files: each service's ``environment:`` (a list of ``KEY=value`` or a map), its
``env_file:``, ``image:`` and ``deploy.replicas``/``scale`` (the service's instances), read with PyYAML's
node tree so that every value keeps its line.

Values are interpolated as Compose does, from the ``.env`` beside the compose file only (never the
machine's environment): ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}``, ``$$`` (https://docs.docker.com/reference/compose-file/interpolation/).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dbtune.appconfig.dotenv_file import parse_dotenv
from dbtune.appconfig.environment import Variable, read_environment
from dbtune.appconfig.model import Origin, Pool, Pooler, Replica
from dbtune.appconfig.values import integer, read_source
from dbtune.errors import UsageError

_VARIABLE = re.compile(r"\$(?:(?P<dollar>\$)|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|"
                       r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


def interpolate(text: str, env: dict[str, str], origin: Origin) -> str:
    """``text`` with Compose's ``$VAR`` forms replaced from ``env``; an unset variable is empty, as in
    Compose. Raises :class:`UsageError` naming ``origin`` for ``${VAR:?message}`` when ``VAR`` is unset."""

    def one(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        name = m.group("bare") or m.group("name")
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if unset else (value or "")
        if op in ("+", ":+"):
            return "" if unset else arg
        if op in ("?", ":?") and unset:
            raise UsageError(f"{origin.file}:{origin.line}: ${{{name}}} is required ({arg or 'unset'}) and the "
                             f".env beside the compose file does not set it")
        return value or ""

    return _VARIABLE.sub(one, text)


def _scalar(node: yaml.Node, what: str, shown: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise UsageError(f"{shown}:{node.start_mark.line + 1}: {what} is not a single value")
    return str(node.value)


def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def load_yaml(text: str, shown: str) -> yaml.Node | None:
    """The YAML node tree. Raises :class:`UsageError` with the line of the first YAML error, or when
    collections are nested too deeply to read."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{shown}{line}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError:
        raise UsageError(f"{shown}: not valid YAML") from None
    except RecursionError:  # PyYAML's composer recurses once per nested collection
        raise UsageError(f"{shown}: not valid YAML: collections nested too deeply to read") from None


def looks_like_compose(root: yaml.Node | None) -> bool:
    """Content detection: a YAML mapping with a ``services:`` mapping."""
    return root is not None and isinstance(_get(root, "services"), yaml.MappingNode)


def read_compose(path: Path, shown: str, text: str) -> tuple[list[Pool], list[Pooler], list[Replica]]:
    """Every service's pools, PgBouncer and replicas (:func:`dbtune.appconfig.environment.read_environment`).
    Raises :class:`UsageError` naming the file and line of what is not YAML, not a compose file, or not a
    value dbtune can read."""
    root = load_yaml(text, shown)
    if not looks_like_compose(root):
        raise UsageError(f"{shown}: not a docker-compose file (no 'services:' mapping)")
    assert root is not None
    dotenv_path, dotenv_shown = path.parent / ".env", str(Path(shown).parent / ".env")
    env = {v.name: v.value for v in parse_dotenv(read_source(dotenv_path, dotenv_shown), dotenv_shown)} \
        if dotenv_path.is_file() else {}
    pools: list[Pool] = []
    poolers: list[Pooler] = []
    replicas: list[Replica] = []
    services = _get(root, "services")
    assert isinstance(services, yaml.MappingNode)
    for key, service in services.value:
        name = str(key.value)
        origin = Origin(shown, key.start_mark.line + 1, f"services.{name}")
        variables = _env_files(service, path, shown, env) + _environment(service, name, shown, env)
        image_node = _get(service, "image")
        image = interpolate(_scalar(image_node, "image", shown), env, origin) if image_node is not None else None
        p, b, r = read_environment(variables, name=name, origin=origin, image=image,
                                   instances=_instances(service, name, shown))
        pools += p
        poolers += b
        replicas += r
    return pools, poolers, replicas


def _environment(service: yaml.Node, name: str, shown: str, env: dict[str, str]) -> list[Variable]:
    node = _get(service, "environment")
    out: list[Variable] = []
    if node is None:
        return out
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            text = _scalar(item, f"services.{name}.environment item", shown)
            key, eq, value = text.partition("=")
            if eq:  # a bare KEY takes the shell's value, which dbtune does not read
                o = Origin(shown, item.start_mark.line + 1, key)
                out.append(Variable(key, interpolate(value, env, o), o))
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            o = Origin(shown, k.start_mark.line + 1, str(k.value))
            if isinstance(v, yaml.ScalarNode) and v.tag != "tag:yaml.org,2002:null":
                out.append(Variable(str(k.value), interpolate(str(v.value), env, o), o))
    else:
        raise UsageError(f"{shown}:{node.start_mark.line + 1}: services.{name}.environment is neither a list nor a "
                         "map")
    return out


def _env_files(service: yaml.Node, path: Path, shown: str, env: dict[str, str]) -> list[Variable]:
    node = _get(service, "env_file")
    if node is None:
        return []
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out: list[Variable] = []
    for item in items:
        entry = _get(item, "path") if isinstance(item, yaml.MappingNode) else item
        if entry is None:
            continue
        name = interpolate(_scalar(entry, "env_file", shown), env, Origin(shown, entry.start_mark.line + 1))
        file, file_shown = path.parent / name, str(Path(shown).parent / name)
        out += parse_dotenv(read_source(file, file_shown), file_shown)  # Compose refuses a missing env_file too
    return out


def _instances(service: yaml.Node, name: str, shown: str) -> tuple[int, Origin] | None:
    node = _get(_get(service, "deploy") or yaml.MappingNode("", []), "replicas") or _get(service, "scale")
    if node is None:
        return None
    origin = Origin(shown, node.start_mark.line + 1, f"services.{name}.deploy.replicas")
    return integer(_scalar(node, "deploy.replicas", shown), origin, minimum=1), origin
