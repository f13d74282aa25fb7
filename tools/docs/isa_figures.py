"""The section on CPUs without AVX-512, from bench/isa.py's two logs (``tools.docs.performance``).

``epyc2-isa.txt`` is the Zen 4's own instruction set (AVX-512); ``epyc2-isa-avx2-emulated.txt``
the same script under oneDNN's, ATen's and MKL's AVX2 caps (bench/run_all.py's
``isa-avx2-emulated``): AVX2's kernels on the Zen 4's cores, not an AVX2 CPU's speed. The two
runs are separate processes, so a figure of one beside a figure of the other is two
measurements, not a ratio measured in one process.
"""

from __future__ import annotations

import re

from tools.docs import markdown
from tools.docs.benchlogs import Log, Table, number, source_line
from tools.docs.markdown import ratio

MACHINE = "epyc2"  # the machine whose logs the section quotes
NATIVE, EMULATED = "isa", "isa-avx2-emulated"  # bench/run_all.py's names for the two runs
OFI = "optimize_for_inference fp32"
INT8 = "quantize int8"
PATHS = {  # the rows of the kernel table: the script's name, the section's
    OFI: "optimize_for_inference fp32",
    "optimize_for_inference bf16": "optimize_for_inference bf16",
    INT8: INT8,
}


def _ms(table: Table, model: str) -> float:
    return number(table.row(model)["ms / batch"])


def probes(log: Log) -> dict[str, str]:
    """The matmul floor and oneDNN's conv rate (GFLOP/s), what archbuilder sees, the environment."""
    env = log.search(r"^Environment: (.*)$")[1]
    return {
        "matmul": log.search(r"^fp32 floor: 2048² matmul \(MKL\) ([\d.]+) GFLOP/s")[1],
        "onednn": log.search(r"^oneDNN fp32 1×1 conv .*?: ([\d.]+) GFLOP/s")[1],
        "sees": log.search(r"^archbuilder sees: (.*)$")[1],
        "capability": log.search(r"^ATen capability: (\w+)")[1],
        "environment": "none" if env.startswith("none of") else env,
    }


def kernels(log: Log) -> dict[str, str]:
    """Each path's oneDNN kernels per call, as the script listed them."""
    found = {}
    for name in PATHS:
        match = re.search(rf"^- {re.escape(name)}: (.*)$", log.body, re.MULTILINE)
        if match:
            found[name] = match[1]
    return found


def kernel_table(native: Log, emulated: Log) -> str:
    mine, theirs = kernels(native), kernels(emulated)

    def cell(text: str) -> str:  # "convolution brgconv_1x1:avx2 ×19" -> "`brgconv_1x1:avx2` ×19"
        return ", ".join(re.sub(r"^(\w+) (\S+) ×(\d+)$", r"\1 `\2` ×\3", part) for part in text.split(", "))

    rows = [[label, cell(mine.get(name, "—")), cell(theirs.get(name, "—"))] for name, label in PATHS.items()]
    return markdown.table(
        ["path", "oneDNN kernels per call (batch 8), AVX-512", "AVX2 (emulated)"], rows, set()
    )


def speed_table(native: Log, emulated: Log) -> str:
    """One row per contender: each ISA's batch-8 time, its fractions of the floors, batch-1 time."""
    n8, e8 = native.table("Batch 8 "), emulated.table("Batch 8 ")
    n1, e1 = native.table("Batch 1 "), emulated.table("Batch 1 ")
    headers = ["model", "AVX-512: b8 ms", "of fp32 floor", "of oneDNN rate", "b1 ms",
               "AVX2 emulated: b8 ms", "of fp32 floor", "of oneDNN rate", "b1 ms"]  # fmt: skip
    rows = []
    for cells in n8.rows:
        model = cells[0]
        a, b = n8.row(model), e8.row(model)
        bold = model in (OFI,)
        name = f"**{model}**" if bold else model
        rows.append(
            [name, a["ms / batch"], a["of fp32 floor"], a["of oneDNN rate"], n1.row(model)["ms / batch"],
             b["ms / batch"], b["of fp32 floor"], b["of oneDNN rate"], e1.row(model)["ms / batch"]]
        )  # fmt: skip
    return markdown.table(headers, rows, set(range(1, len(headers))))


def block_table(log: Log) -> Table:
    return log.table(f"Where {OFI}'s time goes, per block")


def operator_table(log: Log) -> Table:
    return log.table(f"Where {OFI}'s time goes (batch")


PROFILE_ROWS = 8  # blocks of each run in the section's profile table


def profile_table(native: Log, emulated: Log, count: int = PROFILE_ROWS) -> str:
    """The ``count`` slowest blocks of optimize_for_inference fp32 under each ISA, side by side."""
    a, b = block_table(native), block_table(emulated)
    headers = [
        "",
        "AVX-512: block",
        "ms",
        "share",
        "GFLOP/s",
        "AVX2 emulated: block",
        "ms",
        "share",
        "GFLOP/s",
    ]
    rows = []
    for rank, (x, y) in enumerate(zip(a.rows[:count], b.rows[:count]), 1):
        rows.append([str(rank), f"`{x[0]}`", x[1], x[2], x[4] or "—", f"`{y[0]}`", y[1], y[2], y[4] or "—"])
    return markdown.table(headers, rows, {0, 2, 3, 4, 6, 7, 8})


def operator_profile_table(native: Log, emulated: Log, count: int = 4) -> str:
    """The first ``count`` operators by self time under each ISA, side by side."""
    a, b = operator_table(native), operator_table(emulated)
    headers = ["operator", "calls", "AVX-512: ms", "share", "AVX2 emulated: ms", "share"]
    names = [cells[0] for cells in a.rows[:count]]
    names += [cells[0] for cells in b.rows[:count] if cells[0] not in names]
    rows = []
    for name in names:
        x = dict(zip(a.headers, next((c for c in a.rows if c[0] == name), ["", "", "—", "—"])))
        y = dict(zip(b.headers, next((c for c in b.rows if c[0] == name), ["", "", "—", "—"])))
        rows.append([f"`{name}`", x["calls"] or y["calls"], x["ms"], x["share"], y["ms"], y["share"]])
    return markdown.table(headers, rows, {1, 2, 3, 4, 5})


def accuracy_table(native: Log, emulated: Log) -> str:
    """The digits model's fp32 accuracy and each precision's change and agreement, per ISA."""
    headers = ["instruction set", "fp32 accuracy %", "bf16 change (points)", "bf16 top-1 agreement",
               "int8 change (points)", "int8 top-1 agreement", "int8 max rel. err"]  # fmt: skip
    rows = []
    for label, log in (("AVX-512 (native)", native), ("AVX2 (emulated)", emulated)):
        table = log.table("digits (")
        fp32, bf16, int8 = table.row("fp32"), table.row("bf16"), table.row("int8")
        rows.append(
            [label, fp32["test accuracy %"], bf16["change (points)"], bf16["top-1 agreement"],
             int8["change (points)"], int8["top-1 agreement"], re.sub(r"e-0(\d)", r"e-\1", int8["max rel. err"])]
        )  # fmt: skip
    return markdown.table(headers, rows, set(range(1, len(headers))))


def figures(native: Log, emulated: Log) -> dict[str, str]:
    """Every figure of the section, by name (prefixed ``isa_``)."""
    f: dict[str, str] = {
        "source_native": source_line(native),
        "source_avx2": source_line(emulated),
        "machine": native.header["machine"],
        "software": native.header["software"],
        "environment": emulated.header.get("environment", "").split(" (", 1)[0].removeprefix("environment: "),
        "table": speed_table(native, emulated),
        "kernels": kernel_table(native, emulated),
        "profile": profile_table(native, emulated),
        "operators": operator_profile_table(native, emulated),
        "accuracy": accuracy_table(native, emulated),
        "batch": re.search(r"batch (\d+)", block_table(native).caption)[1],
        "profile_count": str(PROFILE_ROWS),
    }
    for key, log in (("native", native), ("avx2", emulated)):
        p = probes(log)
        for name, value in p.items():
            f[f"{name}_{key}"] = value
        b8, b1 = log.table("Batch 8 "), log.table("Batch 1 ")
        for short, model in (
            ("ofi", OFI),
            ("compiled", "optimize_for_inference fp32 + torch.compile"),
            ("frozen", "optimize_for_inference fp32 + compile_frozen"),
            ("nchw", "optimize_for_inference fp32, NCHW"),
            ("separable", "optimize_for_inference fp32, separable max pools"),
            ("bf16", "optimize_for_inference bf16"),
            ("int8", INT8),
            ("plain", "archbuilder (default build)"),
            ("tv", "torchvision googlenet fp32 (nearest reference)"),
        ):
            row = b8.row(model)
            f[f"{short}_b8_{key}"] = row["ms / batch"]
            f[f"{short}_floor_{key}"] = row["of fp32 floor"]
            f[f"{short}_onednn_{key}"] = row["of oneDNN rate"]
            f[f"{short}_vs_tv_{key}"] = row["vs reference"]
            f[f"{short}_b1_{key}"] = b1.row(model)["ms / batch"]
            # int8 ran in a second round: its speed-up over fp32 is within that round
            same = log.table("Second round, batch 8") if model == INT8 else b8
            f[f"{short}_vs_ofi_{key}"] = ratio(_ms(same, OFI) / _ms(same, model))
        ops = operator_table(log)
        for short, operator in (
            ("conv", "mkldnn::_convolution_pointwise"),
            ("pool", "aten::max_pool2d_with_indices"),
            ("cat", "aten::cat"),
            ("copy", "aten::copy_"),
        ):
            row = ops.row(operator)
            f[f"op_{short}_ms_{key}"], f[f"op_{short}_share_{key}"] = row["ms"], row["share"]
        blocks = block_table(log)
        f[f"block_top_{key}"] = blocks.rows[0][0]
        f[f"blocks_caption_{key}"] = blocks.caption
        pools = [cells for cells in blocks.rows if cells[0].startswith("pool")]
        f[f"stem_pools_ms_{key}"] = f"{sum(number(cells[1]) for cells in pools):.2f}"
    # the matmul floor's GFLOP/s per batch of 8, in ms
    macs_line = native.search(
        r"^googlenet\.yaml: ([\d.]+) GMAC per image \(([\d.]+) GFLOP per batch of 8\); "
        r"torchvision's googlenet: ([\d.]+) GMAC per image"
    )
    f["gmacs"], f["gflop_b8"], f["tv_gmacs"] = macs_line[1], macs_line[2], macs_line[3]
    f["probe_repeats"] = native.search(r"^fp32 floor: .*?\(best of (\d+);")[1]
    f["profile_calls"] = re.search(r"median of (\d+) calls", block_table(native).caption)[1]
    for key in ("native", "avx2"):
        f[f"floor_ms_{key}"] = f"{float(f['gflop_b8']) / float(f[f'matmul_{key}']) * 1e3:.0f}"
    return {f"isa_{key}": value for key, value in f.items()}
