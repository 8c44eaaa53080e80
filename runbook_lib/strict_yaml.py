"""The one YAML reader of params and mapping specs: strict where PyYAML is lenient.

PyYAML's ``safe_load`` lets the second of two equal keys win silently (a duplicated
``currency:`` would load CNY orders as USD), expands aliases without limit (a few lines of
nested anchors become billions of nodes) and reads any bytes its decoder guesses. Here:

* the file must be UTF-8 and at most ``MAX_BYTES``;
* a key given twice in one mapping is an error naming both lines (a key beside a YAML merge,
  ``{<<: *rates, currency: CNY}``, overrides the merged one, as intended);
* at most ``MAX_ALIASES`` aliases, and the document expanded through them at most
  ``MAX_NODES`` nodes; a recursive alias is refused.

Every refusal is a ``YamlInputError`` carrying the YAML path (``load.chunk_size``) and line, so
the params and the spec readers report it as their own error, by file and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runbook_lib.errors import YamlInputError

MAX_BYTES = 8 * 1024 * 1024
MAX_ALIASES = 1_000
MAX_NODES = 2_000_000
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` counting aliases as it composes, so a bomb stops at its thousandth."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise YamlInputError(
                    "(file)",
                    f"more than {MAX_ALIASES} YAML aliases (*name); refused as a possible alias "
                    "bomb: write the values out or use fewer anchors",
                    line=mark.line + 1,
                )
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> Any:
    """The YAML document of ``path``, read strictly (see the module docstring)."""
    path = Path(path)
    _refuse_size(path.stat().st_size)
    return parse_yaml(path.read_bytes())


def _refuse_size(size: int) -> None:
    if size > MAX_BYTES:
        raise YamlInputError(
            "(file)",
            f"{size / 2**20:.1f} MiB is more than the {MAX_BYTES / 2**20:.0f} MiB a params file "
            "or mapping spec may be",
        )


def parse_yaml(data: bytes) -> Any:
    """Parse UTF-8 YAML bytes strictly; ``YamlInputError`` for anything refused."""
    _refuse_size(len(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlInputError(
            "(file)",
            f"not UTF-8: byte 0x{data[exc.start]:02x} at line {line}; save the file as UTF-8",
            line=line,
        ) from None
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise YamlInputError("(file)", f"not valid YAML: {exc}") from None
        if node is None:
            return None
        _check_tree(node)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise YamlInputError("(file)", f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _check_tree(root: Node) -> None:
    """Duplicate keys (by YAML path and both lines), recursive aliases and the expanded size."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise YamlInputError(
                "(file)", "a recursive YAML alias (an anchor used inside itself)", line=_line(node)
            )
        visiting.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise YamlInputError(
                "(file)",
                f"expands through its aliases to more than {MAX_NODES:,} values; refused as a "
                "possible alias bomb",
                line=_line(node),
            )
        return total

    size(root)
    seen: set[int] = set()
    pending: list[tuple[Node, str]] = [(root, "")]
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            pending += [(child, f"{path}[{i}]") for i, child in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            first: dict[Any, Node] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    continue
                name = key_node.value if isinstance(key_node, ScalarNode) else repr(key_node)
                child = f"{path}.{name}" if path else str(name)
                earlier = first.get(name)
                if earlier is not None:
                    raise YamlInputError(
                        child,
                        f"duplicate key {name!r} at line {_line(earlier)} and line "
                        f"{_line(key_node)}: YAML would keep only the second; keep one",
                        line=_line(key_node),
                    )
                first[name] = key_node
                pending.append((value_node, child))


def _line(node: Node) -> int:
    return node.start_mark.line + 1
