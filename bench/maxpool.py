"""GoogLeNet's max pools in NCHW and in channels-last (NHWC), eval mode, batch 8.

    python bench/maxpool.py [--repeats 30]

Two pools of torchvision's GoogLeNet: ``maxpool3`` (3×3, stride 2, ceil mode, over block
3b's 8×480×28×28 output) and block 4a's pool branch (3×3, stride 1, padding 1, over
8×480×14×14). Each runs on the same values in both layouts; all four take turns after
warm-up. The table gives the median and the repeats follow.
"""

from __future__ import annotations

import argparse
from functools import partial

import torch
from benchlib import machine, median, print_repeats, table, time_interleaved
from torch.nn import functional as F

POOLS = {
    "maxpool3, 3×3/2 ceil, 8×480×28×28": ((8, 480, 28, 28), dict(stride=2, ceil_mode=True)),
    "4a pool branch, 3×3/1 pad 1, 8×480×14×14": ((8, 480, 14, 14), dict(stride=1, padding=1)),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    contenders = {}
    for name, (shape, options) in POOLS.items():
        nchw = torch.randn(shape)
        nhwc = nchw.contiguous(memory_format=torch.channels_last)
        contenders[f"{name}, NCHW"] = partial(F.max_pool2d, nchw, 3, **options)
        contenders[f"{name}, NHWC"] = partial(F.max_pool2d, nhwc, 3, **options)
        assert torch.equal(contenders[f"{name}, NCHW"](), contenders[f"{name}, NHWC"]())
    with torch.inference_mode():
        times = time_interleaved(contenders, repeats=args.repeats)
    print(f"Machine: {machine()}\nMedian of {args.repeats} interleaved calls after warm-up\n")
    rows = []
    for name in POOLS:
        base = median(times[f"{name}, NCHW"])
        for layout in ("NCHW", "NHWC"):
            seconds = median(times[f"{name}, {layout}"])
            rows.append([name, layout, f"{seconds * 1e3:.2f}", f"{base / seconds:.1f}×"])
    print(table(["pool", "layout", "ms", "speed vs NCHW"], rows))
    print_repeats(times)


if __name__ == "__main__":
    main()
