"""The Training section's figures, from bench/train_step.py's and bench/digits_optimized.py's
logs (``tools.docs.performance``).

``xeon2-train.txt``: GoogLeNet at batch 8 and 32 with the ablation rows;
``xeon2-train-v3.txt`` and ``xeon2-train-resnet50.txt``: batch 8; ``xeon2-train-compile.txt``:
GoogLeNet at batch 8 with the ``torch.compile`` contenders; ``xeon2-train-memory.txt``: peak
memory against batch size with and without block checkpointing; ``xeon2-digits-optimized.txt``:
the digits example over five seeds. Every ratio is one the script printed, two medians of the
same table divided; the verdicts against the issue's targets are computed here from them.
"""

from __future__ import annotations

import re

from tools.docs import markdown
from tools.docs.benchlogs import Log, Table, number, source_line
from tools.docs.markdown import ratio

TV, TV_CL, TV_BF16 = "torchvision", "torchvision, channels_last", "torchvision, channels_last + bf16 autocast"
OURS, OURS_BF16 = "optimize_for_training", "optimize_for_training bf16"
PLAIN = "archbuilder (plain build)"
LEAN, CHECKPOINTED = "optimize_for_training, recompute_pools", "optimize_for_training, checkpoint_blocks"
COLUMNS = [
    "ms / step",
    "vs torchvision",
    "vs torchvision CL",
    "vs best torchvision",
    "peak MiB",
    "memory vs torchvision",
]


def fastest(log: Log, caption: str) -> dict[str, float]:
    """Each contender's fastest repeat (ms) under the table with ``caption``, from the repeats
    the log lists after it: on a machine shared with bursts of other work, the fastest of ten
    interleaved steps is the one least disturbed."""
    start = log.body.index(caption)
    block = log.body[log.body.index("Repeats (ms", start) :].split("\n\n", 1)[0]
    return {
        match[1]: min(float(value) for value in match[2].split())
        for match in re.finditer(r"^- (.+?): (.+)$", block, re.MULTILINE)
    }


def step_table(table: Table, best: dict[str, float]) -> str:
    """The log's table without its images / s column, our optimized rows in bold, with each
    row's fastest repeat and that against torchvision channels-last's fastest."""
    rows = []
    for cells in table.rows:
        row = table.row(cells[0])
        ours = cells[0].startswith("optimize_for_training") or cells[0].startswith("torch.compile(optimize")
        name = f"**{cells[0]}**" if ours else cells[0]
        fast = [f"{best[cells[0]]:.1f}", ratio(best[TV_CL] / best[cells[0]])]
        rows.append([name, *(row[column] for column in COLUMNS), *fast])
    headers = ["model", *COLUMNS, "fastest ms", "fastest vs torchvision CL"]
    return markdown.table(headers, rows, set(range(1, len(headers))))


def _ratio(table: Table, row: str, column: str) -> float:
    return number(table.row(row)[column])


def _ms(table: Table, row: str) -> float:
    return number(table.row(row)["ms / step"])


def _verdict(value: float, target: float) -> str:
    return "met" if value >= target else "**missed**"


def targets_table(
    speed: dict[str, tuple[Table, dict[str, float]]],
    compiled: tuple[Table, dict[str, float]] | None,
    sweep: Table,
    fits: Table,
) -> str:
    """One row per target of issue 31 and measurement: the ratio of the medians and of the
    fastest repeats, the target, and whether each meets it."""
    rows = []

    def add(what: str, where: str, median_ratio: float, fastest_ratio: float | None, target: float) -> None:
        fast = ["", ""] if fastest_ratio is None else [ratio(fastest_ratio), _verdict(fastest_ratio, target)]
        rows.append(
            [what, where, ratio(median_ratio), f"≥ {target:.2f}×", _verdict(median_ratio, target), *fast]
        )

    def add_memory(what: str, where: str, peak: float, reference: float) -> None:
        verdict = "met" if peak <= reference else "**missed**"
        rows.append([what, where, ratio(peak / reference), "≤ 1.00×", verdict, "", ""])

    def ratios(table: Table, best: dict[str, float], row: str, peer: str) -> tuple[float, float]:
        return _ms(table, peer) / _ms(table, row), best[peer] / best[row]

    for where, (table, best) in speed.items():
        tv_best = min((name for name in best if name.startswith("torchvision")), key=best.__getitem__)
        tv_median = min(
            (cells[0] for cells in table.rows if cells[0].startswith("torchvision")),
            key=lambda n: _ms(table, n),
        )
        add("fp32 eager vs torchvision eager", where, *ratios(table, best, OURS, TV), 1.3)
        add("fp32 eager vs torchvision channels-last", where, *ratios(table, best, OURS, TV_CL), 1.1)
        bf16 = _ms(table, tv_median) / _ms(table, OURS_BF16), best[tv_best] / best[OURS_BF16]
        add("bf16 eager vs the best torchvision recipe", where, *bf16, 1.15)
    if compiled is not None:
        table, best = compiled
        where = "GoogLeNet b8, compile run"
        add("fp32 compiled vs torch.compile(torchvision CL)", where,
            *ratios(table, best, f"torch.compile({OURS})", f"torch.compile({TV_CL})"), 1.1)  # fmt: skip
        tv_names = [cells[0] for cells in table.rows if "torchvision" in cells[0]]
        tv_median = min(_ms(table, name) for name in tv_names)
        tv_best = min(best[name] for name in tv_names)
        ours = f"torch.compile({OURS_BF16})"
        add(
            "bf16 compiled vs the best torchvision recipe",
            where,
            tv_median / _ms(table, ours),
            tv_best / best[ours],
            1.15,
        )
    for where, (table, _) in speed.items():
        for row, peer in ((OURS, TV), (OURS_BF16, TV_BF16)):  # each against torchvision in its precision
            peak, reference = number(table.row(row)["peak MiB"]), number(table.row(peer)["peak MiB"])
            add_memory(f"peak memory of {row} vs {peer}", where, peak, reference)
    for cells in sweep.rows:
        row = sweep.row(cells[0])
        where = f"GoogLeNet b{cells[0]}, memory sweep"
        add_memory(f"peak memory of {LEAN} vs {TV_CL}", where, number(row[LEAN]), number(row[TV_CL]))
    checkpointed = number(fits.row(CHECKPOINTED)["vs optimize_for_training"])
    add("largest batch in a fixed budget, with checkpoint_blocks", "GoogLeNet", checkpointed, None, 1.5)
    headers = ["target", "where", "medians", "target", "verdict", "fastest repeats", "verdict"]
    return markdown.table(headers, rows, {2, 3, 5})


def figures(logs: dict[str, Log]) -> dict[str, str]:
    """The figures of the Training section that need only the GoogLeNet, memory and digits logs
    (the compile run and the other models join the targets when their logs are there)."""
    train = logs["train"]
    b8, b32 = train.table("googlenet, batch 8,"), train.table("googlenet, batch 32,")
    compiled = None
    if "train-compile" in logs:
        compile_log = logs["train-compile"]
        compiled = compile_log.table("googlenet, batch 8,"), fastest(compile_log, "googlenet, batch 8,")
    memory = logs["train-memory"]
    sweep, fits = memory.table("Peak MiB per step"), memory.table("Budget:")
    digits = logs["digits-optimized"]
    over = digits.table("Over seeds")
    plain, optimized = over.row("plain"), over.row("optimize_for_training")
    difference = abs(number(plain["mean accuracy"]) - number(optimized["mean accuracy"]))
    noise = max(number(plain["std"]), number(optimized["std"]))
    speed = {
        "GoogLeNet b8": (b8, fastest(train, "googlenet, batch 8,")),
        "GoogLeNet b32": (b32, fastest(train, "googlenet, batch 32,")),
    }
    for where, name, caption in OTHER_MODELS:
        if name in logs:
            speed[where] = logs[name].table(caption), fastest(logs[name], caption)
    f = {
        "train_tv": ratio(
            fastest(train, "googlenet, batch 8,")[TV] / fastest(train, "googlenet, batch 8,")[PLAIN]
        ),
        "train_mem_tv": b8.row("archbuilder (plain build)")["memory vs torchvision"],
        "train_machine": train.search(r"^Machine: (.*)$")[1],
        "train_b8_table": step_table(b8, fastest(train, "googlenet, batch 8,")),
        "train_b32_table": step_table(b32, fastest(train, "googlenet, batch 32,")),
        "train_targets": targets_table(speed, compiled, sweep, fits),
        "train_lean_memory": " / ".join(
            ratio(number(sweep.row(cells[0])[LEAN]) / number(sweep.row(cells[0])[OURS]))
            for cells in sweep.rows
        ),
        "train_sweep_batches": " / ".join(cells[0] for cells in sweep.rows),
        "train_sweep_table": markdown.table(sweep.headers, sweep.rows, set(range(len(sweep.headers)))),
        "train_sweep_caption": sweep.caption.rstrip(":"),
        "train_fits_table": markdown.table(fits.headers, fits.rows, {1, 2}),
        "train_budget": fits.caption.split(";")[0].removeprefix("Budget: "),
        "train_digits_table": markdown.table(over.headers, over.rows, set(range(1, len(over.headers)))),
        "train_digits_speed": digits.search(r"^optimize_for_training: ([0-9.]+×)")[1],
        "train_digits_difference": f"{difference:.2f} points",
        "train_digits_noise": f"{noise:.2f} points",
        "train_digits_verdict": "within" if difference <= noise else "**outside**",
    }
    for key, table in (("b8", b8), ("b32", b32)):
        best = fastest(train, f"googlenet, batch {key[1:]},")  # the steps' gains: least disturbed repeats

        def gain(slower: str, faster: str, best: dict[str, float] = best) -> str:
            return ratio(best[slower] / best[faster])

        f[f"train_{key}_cl"] = gain("archbuilder (plain build)", "+ channels_last")
        f[f"train_{key}_tv_cl"] = gain(TV, TV_CL)
        f[f"train_{key}_fuse"] = gain("+ channels_last", OURS)
        f[f"train_{key}_fuse_bf16"] = gain("+ channels_last, bf16", OURS_BF16)
        f[f"train_{key}_bf16"] = gain(OURS, OURS_BF16)
        f[f"train_{key}_ours"] = table.row(OURS)["vs torchvision"]
        f[f"train_{key}_ours_fastest"] = gain(TV, OURS)
        f[f"train_{key}_bf16_best"] = table.row(OURS_BF16)["vs best torchvision"]
        tv_best = min((name for name in best if name.startswith("torchvision")), key=best.__getitem__)
        f[f"train_{key}_bf16_best_fastest"] = gain(tv_best, OURS_BF16)
    for name in ("train", "train-memory", "digits-optimized"):
        f[f"{name.replace('-', '_')}_source"] = source_line(logs[name])
    return f


def compile_figures(log: Log) -> dict[str, str]:
    """The compile run's table, what compiling gives each side, and recompute_pools' price
    (ratios of fastest repeats, as the steps' gains above)."""
    compiled = log.table("googlenet, batch 8,")
    best = fastest(log, "googlenet, batch 8,")
    tv_cl, ours = best[f"torch.compile({TV_CL})"], best[f"torch.compile({OURS})"]
    return {
        "train_compile_source": source_line(log),
        "train_compile_table": step_table(compiled, best),
        "train_lean_speed": ratio(best[OURS] / best[LEAN]),
        "train_compiled_ours": ratio(tv_cl / ours),
        "train_compiled_tv_gain": ratio(best[TV_CL] / tv_cl),
        "train_compiled_ours_gain": ratio(best[OURS] / ours),
    }


COMPILE_KEYS = (
    "train_compile_source",
    "train_compile_table",
    "train_lean_speed",
    "train_compiled_ours",
    "train_compiled_tv_gain",
    "train_compiled_ours_gain",
)


def not_measured(name: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Each figure of a benchmark whose log is not stored yet, saying so."""
    text = (
        f"**(not measured yet: no `bench/results/xeon2-{name}.txt`; run `python bench/run_all.py {name}`)**"
    )
    return dict.fromkeys(keys, text)


OTHER_MODELS = (  # where, log, table caption
    ("Inception-v3 b8", "train-v3", "inception-v3, batch 8,"),
    ("ResNet-50 b8", "train-resnet50", "resnet50, batch 8,"),
)


def model_figures(name: str, log: Log) -> dict[str, str]:
    """The table and source of one of OTHER_MODELS' logs."""
    caption = next(caption for _, log_name, caption in OTHER_MODELS if log_name == name)
    key = name.replace("-", "_")
    table = step_table(log.table(caption), fastest(log, caption))
    return {f"{key}_table": table, f"{key}_source": source_line(log)}
