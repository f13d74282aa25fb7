"""The key of a static diagram: the colours used, a compare diagram's marks, an overlay's scale."""

from __future__ import annotations

from collections.abc import Sequence as Seq

import graphviz

from archbuilder.analysis.overlay import NO_VALUE, Overlay, format_value
from archbuilder.render.style import STATUS_COLOURS, Theme, text_label

__all__ = ["colour_bar", "legend"]


def legend(
    graph: graphviz.Digraph,
    theme: Theme,
    families: list[str],
    rankdir: str,
    statuses: Seq[str] = (),
    removed: Seq[str] = (),
    per_row: int = 12,
) -> None:
    """Swatches in one row (a column for LR) of the families ``families`` names, in order.

    One rank only: a key spread over several ranks is stretched to the heights of whatever
    else shares them, leaving empty rows in its box.
    """
    by_name = {family.name: family for family in theme.families.values()}
    keys = [(name, by_name[name].fill, by_name[name].line, "rounded,filled") for name in families]
    keys += [(status, "#ffffff", STATUS_COLOURS[status], "rounded,bold") for status in statuses]
    if removed:
        keys.append(
            (f"removed: {', '.join(removed)}", "#ffffff", STATUS_COLOURS["changed"], "rounded,dashed")
        )
    with graph.subgraph(name="cluster_legend") as box:
        box.attr(label="", style="rounded", color="#cccccc", margin="4")
        box.attr("node", shape="box", fontsize="10", height="0.24", width="0", margin="0.10,0.02")
        box.attr("edge", style="invis", minlen="1")
        for start in range(0, len(keys), per_row):
            with box.subgraph() as row:
                row.attr(rank="same")
                for index in range(start, min(start + per_row, len(keys))):
                    name, fill, line, style = keys[index]
                    row.node(f"legend_{index}", name, fillcolor=fill, color=line, style=style)
                    if index > start:
                        pair = (f"legend_{index - 1}", f"legend_{index}")
                        row.edge(*(pair if rankdir == "TB" else reversed(pair)))
            if start:
                box.edge(f"legend_{start - per_row}", f"legend_{start}")


def colour_bar(graph: graphviz.Digraph, overlay: Overlay, rankdir: str, steps: int = 5) -> None:
    """An overlay's key: what it colours by and on which scale, then swatches from the low end
    of the scale to the high, each labelled with its value, and the grey of "no value"."""
    keys = [
        (format_value(tick, overlay.metric), overlay.fill(tick), overlay.ink(tick))
        for tick in overlay.ticks(steps)
    ]
    keys.append(("no value", NO_VALUE, "#000000"))
    with graph.subgraph(name="cluster_overlay") as box:
        box.attr(
            label=text_label(overlay.caption()), fontsize="10", style="rounded", color="#cccccc", margin="4"
        )
        box.attr(
            "node", shape="box", style="filled", fontsize="10", height="0.24", width="0.9", margin="0.06,0.02"
        )
        box.attr("edge", style="invis", minlen="1")
        with box.subgraph() as row:
            row.attr(rank="same")
            for index, (name, fill, ink) in enumerate(keys):
                row.node(f"overlay_{index}", name, fillcolor=fill, color=fill, fontcolor=ink)
                if index:
                    pair = (f"overlay_{index - 1}", f"overlay_{index}")
                    row.edge(*(pair if rankdir == "TB" else reversed(pair)))
