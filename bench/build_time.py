"""Build time: a spec file to an initialized ``nn.Module``, against torchvision's constructor.

    python bench/build_time.py [--repeats 15]

archbuilder's time is the whole path a user takes: read and validate the YAML, lower it to
the IR with every shape inferred, create the modules and initialize their weights. Contenders
take turns, after warm-up; the table gives the median.
"""

from __future__ import annotations

import argparse
import warnings

import torchvision
from article_googlenet import ArticleGoogLeNet
from benchlib import ROOT, machine, median, table, time_interleaved

import archbuilder


def torchvision_googlenet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    contenders = {
        "torchvision.models.googlenet()": torchvision_googlenet,
        "archbuilder.build('specs/googlenet-torchvision.yaml')": lambda: archbuilder.build(
            ROOT / "specs" / "googlenet-torchvision.yaml"
        ),
        "ArticleGoogLeNet() (hand-written)": ArticleGoogLeNet,
        "archbuilder.build('specs/googlenet.yaml')": lambda: archbuilder.build(
            ROOT / "specs" / "googlenet.yaml"
        ),
    }
    times = time_interleaved(contenders, repeats=args.repeats)
    base = median(times["torchvision.models.googlenet()"])
    print(f"Machine: {machine()}\nMedian of {args.repeats} interleaved builds after warm-up\n")
    rows = [[name, f"{median(t) * 1e3:.1f}", f"{median(t) / base:.2f}"] for name, t in times.items()]
    print(table(["build", "ms", "time / torchvision's"], rows))


if __name__ == "__main__":
    main()
