"""The performance figures of the docs, from the stored benchmark logs (target ``performance``).

docs/performance.md is tools/templates/performance.md with every ``{{name}}`` replaced by a
figure read from bench/results/ (``bench/run_all.py`` writes those logs). In README.md and
docs/experiments.md only the regions are generated, each from the template named beside it in
``DOCS``. Nothing here measures anything: the output depends only on the logs, the templates
and the shipped specs (for multiply-add counts). ``python -m tools.docs --results DIR`` reads
another run's logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import archbuilder
from tools.docs import RESULTS, SPECS, TEMPLATES, isa_figures, markdown, training_figures
from tools.docs.benchlogs import Log, Table, number, read_log, source_line
from tools.docs.markdown import percent, ratio
from tools.docs.precision_figures import accuracy_table, lineage_table, precision_profile_table, speed_table
from tools.docs.target import Output, Tree

CPU = "xeon2"  # the machine whose logs the docs quote
# benchmarks (bench/run_all.py's names) whose logs the docs quote from another machine
MACHINE_OF = {isa_figures.NATIVE: isa_figures.MACHINE, isa_figures.EMULATED: isa_figures.MACHINE}
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

# doc -> its (template, region) pairs; region None: the template is the whole file
DOCS = {
    "docs/performance.md": (("performance.md", None),),
    "README.md": (("README-performance.md", "performance"),),
    "docs/experiments.md": (
        ("experiments-digits-output.md", "digits-output"),
        ("experiments-digits-torchrun.md", "digits-torchrun"),
        ("experiments-digits.md", "digits"),
    ),
}


@dataclass(frozen=True)
class Logs:
    """The benchmark logs of one folder (bench/results/, or a new run's)."""

    folder: Path = RESULTS

    def __call__(self, name: str, machine: str = CPU) -> Log:
        """The log of benchmark ``name`` (bench/run_all.py's name) on ``machine``."""
        return self.file(f"{machine}-{name}.txt")

    def file(self, filename: str) -> Log:
        return read_log(self.folder / filename)

    def has(self, name: str, machine: str = CPU) -> bool:
        return (self.folder / f"{machine}-{name}.txt").exists()


INFERENCE_NAMES = {
    "archbuilder": "archbuilder (default build)",
    "optimize_for_inference": "**optimize_for_inference** (+ fuse_activations)",
}


def inference_figures(prefix: str, log_: Log, spec: str) -> dict[str, str]:
    b1, b8 = log_.table("Batch 1,"), log_.table("Batch 8,")
    rows, errors = [], []
    for cells in b8.rows:
        model = cells[0]
        one, eight = b1.row(model), b8.row(model)
        error = max(number(one["max rel. error"]), number(eight["max rel. error"]))
        errors.append(error)
        rows.append(
            [
                INFERENCE_NAMES.get(model, model),
                f"{number(one['ms / batch']):.1f}",
                one["vs torchvision"],
                f"{number(eight['ms / batch']):.1f}",
                eight["vs torchvision"],
                f"{error:.1e}",
            ]
        )
    headers = ["model", "batch 1, ms", "vs torchvision", "batch 8, ms", "vs torchvision", "max rel. error"]
    r8 = {cells[0]: number(cells[3]) for cells in b8.rows}
    r1 = {cells[0]: number(cells[3]) for cells in b1.rows}
    profile = log_.table("Where optimize_for_inference's time goes")
    conv = profile.row("mkldnn::_convolution_pointwise")
    macs = archbuilder.summarize(archbuilder.load_spec(SPECS / spec)).inference_macs
    batch = int(re.search(r"batch (\d+)", profile.caption)[1])
    f = {
        "table": markdown.table(headers, rows, {1, 2, 3, 4, 5}),
        "source": source_line(log_),
        "error": f"{max(errors):.1e}",
        "b1_ofi": ratio(r1["optimize_for_inference"]),
        "b8_ofi": ratio(r8["optimize_for_inference"]),
        "b8_default": ratio(r8["archbuilder"]),
        "b1_default": ratio(r1["archbuilder"]),
        "cl": ratio(r8["+ channels_last"] / r8["archbuilder"]),
        "fold": percent(r8["+ fold_bn"] / r8["+ channels_last"] - 1),
        "siblings": percent(r8["+ fuse_siblings"] / r8["+ fold_bn"] - 1),
        "act_b8": percent(r8["optimize_for_inference"] / r8["+ fuse_siblings"] - 1),
        "act_b1": percent(r1["optimize_for_inference"] / r1["+ fuse_siblings"] - 1),
        "conv_share": conv["share"],
        "conv_ms": conv["ms"],
        "gmacs": f"{macs / 1e9:.2f}",
        "batch_gmacs": f"{batch * macs / 1e9:.1f}",
        "gflops": f"{2 * batch * macs / (number(conv['ms']) / 1e3) / 1e9:.0f}",
        "profile": profile_table(profile),
        "optimize_s": log_.search(r"optimize_for_inference took ([0-9.]+) s")[1],
    }
    for name in ("torch.compile(torchvision)", "torch.compile(optimize_for_inference)"):
        if name in r8:
            f["b8_" + ("compiled_tv" if "torchvision" in name else "compiled_ofi")] = ratio(r8[name])
    pools = [row for row in profile.rows if row[0].startswith("aten::max_pool2d")]
    f["pool_share"] = pools[0][3] if pools else "0%"
    return {f"{prefix}_{key}": value for key, value in f.items()}


def profile_table(profile: Table) -> str:
    rows = [[f"`{cells[0]}`", cells[1], cells[2], cells[3]] for cells in profile.rows[:4]]
    rest = 100 - sum(number(cells[3]) for cells in profile.rows[:4])
    rows.append(["everything else (of the 8 largest and the rest)", "", "", f"{rest:.1f}%"])
    return markdown.table(["operator", "calls", "ms", "share"], rows, {1, 2, 3})


def cpu_inference(log: Logs) -> dict[str, str]:
    main = log("inference")
    f = inference_figures("gn", main, "googlenet-torchvision.yaml")
    f |= inference_figures("v3", log("inference-v3"), "inception-v3.yaml")
    f |= inference_figures("rn", log("inference-resnet50"), "resnet50.yaml")
    f["v3_macs_ratio"] = f"{float(f['v3_gmacs']) / float(f['gn_gmacs']):.1f}×"
    f["machine"] = main.header["machine"]
    f["software"] = main.header["software"]
    return f


def compile_times(log: Logs) -> dict[str, str]:
    compile_log = log("compile")
    fresh = compile_log.table("Fresh process")
    f = {"compile_source": source_line(compile_log), "compile_caption": fresh.caption}
    rows = []
    for cells in fresh.rows:
        row = dict(zip(fresh.headers, cells))
        f[f"compile_{cells[0]}"] = row["compile s"]
        rows.append([cells[0], row["compile s"], row["fastest s"], row["slowest s"]])
    f["compile_table"] = markdown.table(
        ["model", "compile s (median)", "fastest s", "slowest s"], rows, {1, 2, 3}
    )
    same = compile_log.table("One process")
    f["compile_same_table"] = markdown.table(same.headers, same.rows, {1, 2})
    first, second = same.row("torchvision then optimized"), same.row("optimized then torchvision")
    f["compile_tv_first"], f["compile_tv_second"] = first["torchvision s"], second["torchvision s"]
    f["compile_ofi_second"], f["compile_ofi_first"] = first["optimized s"], second["optimized s"]
    return f


def maxpool(log: Logs) -> dict[str, str]:
    pools = log("maxpool")
    table = pools.table("Median of")
    f = {"pool_source": source_line(pools)}
    for key, name in (("pool3", "maxpool3"), ("branch", "4a pool branch")):
        nchw = next(cells for cells in table.rows if cells[0].startswith(name) and cells[1] == "NCHW")
        nhwc = next(cells for cells in table.rows if cells[0].startswith(name) and cells[1] == "NHWC")
        f[f"{key}_nchw"], f[f"{key}_nhwc"], f[f"{key}_gain"] = nchw[2], nhwc[2], nhwc[3]
    return f


def training(log: Logs) -> dict[str, str]:
    logs = {name: log(name) for name in ("train", "train-memory", "digits-optimized")}
    for name in ("train-compile", *(name for _, name, _ in training_figures.OTHER_MODELS)):
        if log.has(name):  # their rows join the targets once measured
            logs[name] = log(name)
    f = training_figures.figures(logs)
    gpu = log.file("h100-train.txt").tables[0]
    f["gpu_train_peak"] = gpu.rows[0][3]
    f["gpu_train_tv"] = gpu.row("archbuilder (torchvision layout)")["speed vs peer"]
    f["gpu_train_article"] = gpu.row("archbuilder (article)")["speed vs peer"]
    f["gpu_train_ms"] = " / ".join(f"{cells[1]}" for cells in gpu.rows)
    return f


def training_compile(log: Logs) -> dict[str, str]:
    if not log.has("train-compile"):
        return training_figures.not_measured("train-compile", training_figures.COMPILE_KEYS)
    return training_figures.compile_figures(log("train-compile"))


def training_other_models(log: Logs) -> dict[str, str]:
    f: dict[str, str] = {}
    for _, name, _ in training_figures.OTHER_MODELS:
        key = name.replace("-", "_")
        if log.has(name):
            f |= training_figures.model_figures(name, log(name))
        else:
            f |= training_figures.not_measured(name, (f"{key}_table", f"{key}_source"))
    return f


def build_time(log: Logs) -> dict[str, str]:
    build = log("build")
    table = build.tables[0]
    ms = {int(cells[0]): number(cells[3]) for cells in table.rows}
    headers = ["row", "comparison", "build", "ms", "time / peer's", "peer"]
    f = {"build_table": markdown.table(headers, table.rows, {0, 3, 4})}
    f["build_source"] = source_line(build)
    f["build_like_tv"] = ratio(ms[2] / ms[1])
    f["build_like_article"] = ratio(ms[4] / ms[3])
    f["build_default_tv"] = ratio(ms[6] / ms[5])
    f["build_default_article"] = ratio(ms[8] / ms[7])
    f["build_tv_default_ms"], f["build_tv_torch_init_ms"] = f"{ms[5]:.1f}", f"{ms[9]:.1f}"
    f["build_tv_second_init_ms"] = f"{ms[5] - ms[9]:.1f}"
    return f


def scale(log: Logs) -> dict[str, str]:
    scale_log = log("scale")
    table = scale_log.tables[0]
    f = {"scale_table": markdown.table(table.headers, table.rows, set(range(1, len(table.headers))))}
    f["scale_source"] = source_line(scale_log)
    f["scale_caption"] = scale_log.search(r"^Median of .*$")[0]
    largest = table.rows[-1]
    f["scale_largest"], f["scale_largest_total"] = largest[0], largest[1]
    f["scale_largest_range"] = f"{largest[2]}–{largest[3]} s"
    f["scale_per_block"] = largest[4]
    return f


def gc_pause(log: Logs) -> dict[str, str]:
    pause = log("gc-pause")
    table = pause.tables[0]
    return {
        "gc_pause_table": markdown.table(table.headers, table.rows, set(range(1, len(table.headers)))),
        "gc_pause_source": source_line(pause),
    }


def startup(log: Logs) -> dict[str, str]:
    start = log("startup")
    commands, imports = start.tables[0], start.tables[1]
    # The commands' table without the earlier commit's p90 column (the log's repeats hold it).
    shown = [i for i, header in enumerate(commands.headers) if i < 3 or not header.endswith("p90 ms")]
    rows = [[f"`{cells[0]}`", *(cells[i] for i in shown[1:])] for cells in commands.rows]
    validate = commands.row("archbuild validate googlenet")
    return {
        "startup_table": markdown.table(
            [commands.headers[i] for i in shown], rows, set(range(1, len(shown)))
        ),
        "startup_imports_table": markdown.table(imports.headers, imports.rows, {1, 2}),
        "startup_source": source_line(start),
        "startup_command": start.header["command"],
        "startup_against": start.search(r"^against: (\S+)")[1],
        "startup_runs": start.search(r"^(\d+) fresh processes")[1],
        "startup_load": start.search(r"^load average before: (\S+)")[1],
        "startup_validate_ms": validate["wall median ms"],
    }


def render(log: Logs) -> dict[str, str]:
    render_log = log("render")
    table = render_log.tables[0]
    slowest = max(number(cell) for cells in table.rows for cell in cells[1:])
    return {
        "render_table": markdown.table(table.headers, table.rows, set(range(1, len(table.headers)))),
        "render_source": source_line(render_log),
        "render_graphviz": render_log.search(r"^system Graphviz: .*version ([0-9.]+)")[1],
        "render_slowest": f"{slowest / 1000:.2f} s",
        "render_repeats": render_log.search(r"median of (\d+)")[1],
    }


def gpu(log: Logs) -> dict[str, str]:
    fp32, bf16 = log.file("h100-fp32.txt"), log.file("h100-bf16.txt")
    t32, t16 = fp32.table("Batch 64"), bf16.table("Batch 64")
    rows = []
    for cells in t32.rows:
        a, b = t32.row(cells[0]), t16.row(cells[0])
        rows.append([cells[0], a["images / s"], a["vs torchvision"], b["images / s"], b["vs torchvision"]])
    compiled = log.file("h100-compile.txt")
    tc = compiled.table("Batch 64")
    return {
        "gpu_table": markdown.table(
            ["model", "fp32 images / s", "vs torchvision", "bf16 autocast", "vs torchvision"],
            rows,
            {1, 2, 3, 4},
        ),
        "gpu_machine": fp32.search(r"^Machine: (.*)$")[1],
        "gpu_fp32_ofi": t32.row("optimize_for_inference")["vs torchvision"],
        "gpu_bf16_ofi": t16.row("optimize_for_inference")["vs torchvision"],
        "gpu_fp32_error": t32.row("optimize_for_inference")["max rel. error"],
        "gpu_bf16_error": t16.row("optimize_for_inference")["max rel. error"],
        "gpu_compiled_tv": tc.row("torch.compile(torchvision)")["vs torchvision"],
        "gpu_compiled_ofi": tc.row("torch.compile(optimize_for_inference)")["vs torchvision"],
        "gpu_compile_default": tc.row("archbuilder")["vs torchvision"],
        "gpu_compile_times": " and ".join(
            m[1] for m in re.finditer(r"compiled in ([0-9.]+ s)", compiled.body)
        ),
    }


def digits(log: Logs) -> dict[str, str]:
    digits_log = log("digits", "epyc2")  # measured on the AMD EPYC after the one-thread default
    table = digits_log.tables[0]
    f = {"digits_source": source_line(digits_log)}
    for cells in table.rows:
        row = dict(zip(table.headers, cells))
        key = cells[0].replace("-", "_")
        f[f"digits_{key}_acc"] = row["test accuracy"]
        f[f"digits_{key}_epoch_s"] = row["s / epoch"]
        f[f"digits_{key}_train_s"] = row["training s"]
        f[f"digits_{key}_wall_s"] = row["wall s"]
    runs = re.split(r"^(\S+):$", digits_log.body.split("\n\n", 2)[2], flags=re.MULTILINE)[1:]
    output = {name: text.strip().splitlines() for name, text in zip(runs[::2], runs[1::2])}
    default, torchrun = output["default"], output["processes-2"]
    f["digits_default_output"] = "\n".join([*default[:3], "...", *default[-2:]])
    f["digits_torchrun_output"] = "\n".join([*torchrun[:2], "...", *torchrun[-3:]])
    accuracies = [number(cells[1]) for cells in table.rows]
    after_8 = [number(cells[2]) for cells in table.rows]
    epoch_s = {cells[0]: number(dict(zip(table.headers, cells))["s / epoch"]) for cells in table.rows}
    f["digits_idle_threads_2_speedup"] = f"{epoch_s['default'] / epoch_s['threads-2']:.1f}×"
    f["digits_loaded_threads_2_slowdown"] = f"{epoch_s['loaded-threads-2'] / epoch_s['loaded-default']:.1f}×"
    f["digits_runs"] = str(len(table.rows))
    f["digits_min_acc"] = f"{min(accuracies):.2f}%"
    f["digits_min_acc_8"] = f"{min(after_8):.2f}%"
    return f


def precision(log: Logs) -> dict[str, str]:
    speed = log("precision")
    figures_ = {"precision_table": speed_table(speed), "precision_source": source_line(speed)}
    figures_["precision_digits_table"] = accuracy_table(speed, "digits (")
    figures_["precision_googlenet_table"] = accuracy_table(speed, "GoogLeNet 224², trained")
    for key, name in (
        ("eager", "optimize_for_inference bf16"),
        ("frozen", "optimize_for_inference bf16, compile_frozen"),
        ("int8", "quantize int8"),
    ):
        figures_[f"precision_profile_{key}"] = precision_profile_table(speed, name)
    floors = speed.search(r"^matmul floor \(4096²\): fp32 (\d+), bf16 (\d+) GFLOP/s$")
    int8 = speed.search(r"^int8 matmul \(4096², torch._int_mm\): (\d+) GOP/s, ([\d.]+)× bf16's$")
    figures_["precision_probe"] = (
        f"{int(floors[2]):,} GFLOP/s in bf16 and {int(floors[1]):,} GFLOP/s in fp32; the int8 GEMM "
        f"probe (`torch._int_mm`) gave {int(int8[1]):,} GOP/s, {int8[2]}× bf16's"
    )
    return figures_


def precision_lineage(log: Logs) -> dict[str, str]:
    lineage = log("precision-lineage")
    return {"lineage_table": lineage_table(lineage), "lineage_source": source_line(lineage)}


def isa(log: Logs) -> dict[str, str]:
    native, emulated = (log(name, MACHINE_OF[name]) for name in (isa_figures.NATIVE, isa_figures.EMULATED))
    return isa_figures.figures(native, emulated)


FIGURES: tuple[Callable[[Logs], dict[str, str]], ...] = (
    cpu_inference,
    compile_times,
    maxpool,
    training,
    training_compile,
    training_other_models,
    build_time,
    scale,
    gc_pause,
    startup,
    render,
    gpu,
    digits,
    precision,
    precision_lineage,
    isa,
)
MISSING = "_missing"  # the key under which all_figures lists the logs it did not find


def all_figures(results: Path = RESULTS) -> dict[str, str]:
    """Every figure, by name, from the logs in ``results``. A missing log leaves its figures out
    and is listed under MISSING."""
    logs = Logs(results)
    values: dict[str, str] = {}
    missing = []
    for figures in FIGURES:
        try:
            values |= figures(logs)
        except FileNotFoundError as error:
            missing.append(Path(error.filename).name)
    if missing:
        values[MISSING] = ", ".join(missing)
    return values


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with its figures; one whose log is missing says so (and the tests fail)."""

    def value(match: re.Match) -> str:
        if match[1] in values:
            return values[match[1]]
        if MISSING in values:
            names = values[MISSING]
            return f"**(not measured yet: no `bench/results/{names}`; run `python bench/run_all.py`)**"
        raise KeyError(f"no figure {match[1]!r}; the figures are {', '.join(sorted(values))}")

    return PLACEHOLDER.sub(value, template)


def outputs(tree: Tree) -> list[Output]:
    """docs/performance.md whole, and the regions of README.md and docs/experiments.md."""
    values = all_figures(tree.results)
    return [
        Output(doc, region, fill((TEMPLATES / template).read_text(encoding="utf-8"), values))
        for doc, parts in DOCS.items()
        for template, region in parts
    ]
