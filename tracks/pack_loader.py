"""Turning the text of a course pack into plain data, with bounded work.

A pack is YAML (or JSON, which YAML reads). PyYAML's safe loader builds no objects, but an alias
(`*name`) shares a node, so a kilobyte of nested aliases ("billion laughs") becomes a document
whose schema check, error messages or content hash walk 10⁹ values. Aliases are refused: a pack
spells every value out, so a document is never larger than its text. Composing is also bounded in
node count (the scanning work of a large pack) and depth (PyYAML composes recursively), so a pack
is accepted or refused after at most `CO_COURSEPACK_MAX_YAML_NODES` nodes.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import Node

MAX_DEPTH = 64


class PackStructureRefused(ComposerError):
    """The text is YAML, but not one a course pack may be; `problem` says why, `problem_mark`
    where, `nodes` how many values were composed before the refusal."""

    nodes: int = 0


class _PackLoader(yaml.SafeLoader):
    """The safe loader, refusing aliases and counting the nodes and depth it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.depth = 0
        self.max_nodes: int = settings.CO_COURSEPACK_MAX_YAML_NODES

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise self._refuse(
                f"uses the alias *{event.anchor}; anchors and aliases are not allowed in a course pack (write each value out)",
                event,
            )
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise self._refuse(
                f"has more than {self.max_nodes} YAML values; split the track into smaller packs "
                "or produce large inputs with hidden_generators",
                event,
            )
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._refuse(f"nests deeper than {MAX_DEPTH} levels", event)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def _refuse(self, problem: str, event: Any) -> PackStructureRefused:
        refusal = PackStructureRefused(problem=problem, problem_mark=event.start_mark)
        refusal.nodes = self.nodes
        return refusal


def load_pack_text(text: str) -> tuple[Any, int]:
    """(the document, how many YAML nodes it took); raises `yaml.YAMLError` for text that is not
    a course pack's YAML (`PackStructureRefused` for aliases, too many values, too deep)."""
    loader = _PackLoader(text)
    try:
        return loader.get_single_data(), loader.nodes
    finally:
        loader.dispose()
