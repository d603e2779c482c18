"""cytohub's cross-corpus taxonomy: the values a row's `harmonized` may take.

One JSON file per tree in `data/taxonomy/` (e.g. `bethesda-2014.json` for gynecologic cytology), each
`{"id", "title", "scope", "nodes": [{"id", "parent", "name"}]}`. Node ids are unique across all trees; a
node's parent is named by id (null for a root). Map a native class to the most specific node that is
honestly true of it, or to null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

VERSION = "1"


@dataclass(frozen=True)
class Node:
    id: str
    parent: str | None
    name: str
    tree: str


@dataclass(frozen=True)
class Taxonomy:
    trees: dict[str, dict]  # tree id -> {"title", "scope"}
    nodes: dict[str, Node]

    def ancestors(self, node_id: str) -> list[str]:
        """Root -> node ids."""
        out = []
        cur: str | None = node_id
        while cur is not None:
            out.append(cur)
            cur = self.nodes[cur].parent
        return out[::-1]

    def cut(self, node_id: str, depth: int) -> str:
        """`node_id`'s ancestor at `depth` of its tree (1 = the top level, e.g. `NILM`; 2 = its children, e.g.
        `NILM/squamous`); the node itself when it is no deeper than `depth`. Raises ValueError for an unknown
        node or a depth below 1."""
        if depth < 1:
            raise ValueError(f"taxonomy depth must be >= 1 (1 = the top level of a tree), got {depth}")
        if node_id not in self.nodes:
            raise ValueError(f"{node_id!r} is not a node of cytohub's harmonized taxonomy")
        path = self.ancestors(node_id)
        return path[min(depth, len(path)) - 1]

    def node_ids(self, depth: int | None = None, trees: Iterable[str] | None = None) -> list[str]:
        """Every node id that `cut(node, depth)` can give (every node when `depth` is None), of the given trees
        (all when None), in taxonomy order: tree files sorted by name, nodes in file order. Raises ValueError
        for an unknown tree id."""
        wanted = set(self.trees) if trees is None else set(trees)
        unknown = wanted - set(self.trees)
        if unknown:
            raise ValueError(f"unknown taxonomy tree(s) {sorted(unknown)}; expected some of {list(self.trees)}")
        out = dict.fromkeys(n.id if depth is None else self.cut(n.id, depth)
                            for n in self.nodes.values() if n.tree in wanted)
        return list(out)

    def is_leaf(self, node_id: str) -> bool:
        """True when no node has `node_id` as its parent."""
        return all(n.parent != node_id for n in self.nodes.values())

    def at_depth(self, node_id: str, depth: int) -> str | None:
        """The class of `node_id` when its tree is cut at `depth` (1 = the roots, e.g. Bethesda `NILM`, `ASC`;
        2 = their children, e.g. `ASC-US`): its ancestor at that depth; the node itself when it is a leaf
        above that depth (nothing finer exists, e.g. `LSIL` at depth 2); None when it is not a leaf and lies
        above that depth (a row labelled only `ASC` cannot honestly be called `ASC-US` or `ASC-H`).
        Raises KeyError for an unknown node and ValueError for a depth below 1."""
        if depth < 1:
            raise ValueError(f"taxonomy depth must be >= 1 (1 = the roots of a tree), got {depth}")
        path = self.ancestors(node_id)
        if len(path) >= depth:
            return path[depth - 1]
        return node_id if self.is_leaf(node_id) else None

    def classes_at_depth(self, tree: str, depth: int) -> list[str]:
        """Every class a cut of `tree` at `depth` can give (see `at_depth`): the nodes at that depth and the
        leaves above it, in the tree file's order. Raises KeyError for an unknown tree."""
        if tree not in self.trees:
            raise KeyError(tree)
        return [n.id for n in self.nodes.values()
                if n.tree == tree and self.at_depth(n.id, depth) == n.id]

    def max_depth(self, tree: str) -> int:
        """The depth of the deepest node of `tree` (1 for a flat tree)."""
        return max(len(self.ancestors(n.id)) for n in self.nodes.values() if n.tree == tree)


@cache
def load_taxonomy() -> Taxonomy:
    nodes: dict[str, Node] = {}
    trees: dict[str, dict] = {}
    folder = files("cytohub").joinpath("data/taxonomy")
    for res in sorted(folder.iterdir(), key=lambda r: r.name):
        if not res.name.endswith(".json"):
            continue
        tree = json.loads(res.read_text(encoding="utf-8"))
        trees[tree["id"]] = {"title": tree["title"], "scope": tree.get("scope", "")}
        for n in tree["nodes"]:
            if n["id"] in nodes:
                raise ValueError(f"taxonomy/{res.name}: node id {n['id']!r} is already used")
            nodes[n["id"]] = Node(n["id"], n["parent"], n["name"], tree["id"])
    for n in nodes.values():
        if n.parent is not None and n.parent not in nodes:
            raise ValueError(f"taxonomy: node {n.id!r} has unknown parent {n.parent!r}")
    return Taxonomy(trees, nodes)
