"""Build time: a spec file to an initialized ``nn.Module``, against the hand-written models.

    python bench/build_time.py [--repeats 15]

archbuilder's time is the whole path a user takes: read and validate the YAML, lower it to
the IR with every shape inferred, create the modules and initialize their weights once
(archbuilder's documented init: Kaiming normal convs, normal(0, 0.01) linears).

Each side's default does different work, so the comparison is made twice:

* **like with like:** the hand-written model made the way archbuilder makes its modules (on
  the meta device, given memory once, one pass of the same init, ``made_initialized``);
* **defaults:** torchvision's ``googlenet()`` runs torch's default init in every layer's
  constructor and then its own ``trunc_normal_`` pass over every conv and linear again
  (``init_weights=True``, its default); ``ArticleGoogLeNet()`` keeps torch's default init.

Two more rows split the work: torchvision with ``init_weights=False`` (torch's default init
only), and ``archbuilder.build`` of a spec already loaded (no YAML read or validation).
Contenders take turns, after warm-up; the table gives the median and the repeats follow.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable

import torchvision
from article_googlenet import ArticleGoogLeNet
from benchlib import ROOT, machine, median, print_repeats, table, time_interleaved

import archbuilder
from archbuilder.builder.init import made_initialized

TORCHVISION_SPEC = ROOT / "specs" / "googlenet-torchvision.yaml"
ARTICLE_SPEC = ROOT / "specs" / "googlenet.yaml"


def torchvision_googlenet(init_weights: bool) -> Callable[[], object]:
    def make():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=init_weights)

    return make


# (group, row, contender, peer row); the peer is what the ratio compares with.
ROWS = (
    (
        "like with like",
        "torchvision googlenet, archbuilder's init (meta device, one pass)",
        lambda: made_initialized(torchvision_googlenet(False)),
        None,
    ),
    (
        "like with like",
        "archbuilder.build('googlenet-torchvision.yaml')",
        lambda: archbuilder.build(TORCHVISION_SPEC),
        0,
    ),
    (
        "like with like",
        "ArticleGoogLeNet, archbuilder's init (meta device, one pass)",
        lambda: made_initialized(ArticleGoogLeNet),
        None,
    ),
    ("like with like", "archbuilder.build('googlenet.yaml')", lambda: archbuilder.build(ARTICLE_SPEC), 2),
    (
        "defaults",
        "torchvision.models.googlenet() (torch's init, then trunc_normal_)",
        torchvision_googlenet(True),
        None,
    ),
    ("defaults", "archbuilder.build('googlenet-torchvision.yaml')", None, 4),
    ("defaults", "ArticleGoogLeNet() (torch's default init)", ArticleGoogLeNet, None),
    ("defaults", "archbuilder.build('googlenet.yaml')", None, 6),
    (
        "parts",
        "torchvision googlenet(init_weights=False) (torch's default init only)",
        torchvision_googlenet(False),
        4,
    ),
    ("parts", "archbuilder.build(loaded spec) (no YAML read or validation)", None, 1),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    loaded = archbuilder.load_spec(TORCHVISION_SPEC)
    contenders = {row: run for _, row, run, _ in ROWS if run is not None}
    contenders["archbuilder.build(loaded spec) (no YAML read or validation)"] = lambda: archbuilder.build(
        loaded
    )
    times = time_interleaved(contenders, repeats=args.repeats)
    # A row without its own contender reuses the like-with-like timing of the same build.
    same = {5: 1, 7: 3}
    print(f"Machine: {machine()}\nMedian of {args.repeats} interleaved builds after warm-up\n")
    rows = []
    for index, (group, row, _, peer) in enumerate(ROWS):
        ms = median(times[ROWS[same.get(index, index)][1]]) * 1e3
        ratio = "" if peer is None else f"{ms / (median(times[ROWS[peer][1]]) * 1e3):.2f}"
        peer_name = "" if peer is None else f"row {peer + 1}"
        rows.append([f"{index + 1}", group, row, f"{ms:.1f}", ratio, peer_name])
    print(table(["row", "comparison", "build", "ms", "time / peer's", "peer"], rows))
    print_repeats(times)


if __name__ == "__main__":
    main()
