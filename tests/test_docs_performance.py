"""Every performance figure in the docs comes from a stored log in bench/results/.

The generated pages and regions must be what `python -m tools.docs performance` makes of the
logs now; the figures quoted in prose elsewhere must match the log they name; every log the
docs quote carries bench/run_all.py's header.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tools.docs import benchlogs, performance, precision_figures, run
from tools.docs.target import Tree

from .conftest import ROOT

REGENERATE = "python -m tools.docs performance"
RESULTS = ROOT / "bench" / "results"
HEADER = ("command", "date", "commit", "machine", "software", "took")


@pytest.fixture(scope="module")
def tool():
    return performance


@pytest.fixture(scope="module")
def logs():
    return benchlogs


def test_generated_docs_are_current(tool):
    outputs = tool.outputs(Tree())
    assert {output.path for output in outputs} == set(tool.DOCS)
    for output in outputs:
        assert run.stale([output], Tree()) == [], f"{output.label} is stale: run `{REGENERATE}`"


def test_a_changed_log_makes_the_docs_stale(tool, tmp_path):
    """The check above can fail: one median changed in a copy of the logs changes the page."""
    for path in RESULTS.glob("*.txt"):
        shutil.copy(path, tmp_path)
    log = tmp_path / "xeon2-scale.txt"
    text = log.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| 10,000 |"))
    cells = row.split("|")
    cells[2] = " 9.876 "  # the median total
    log.write_text(text.replace(row, "|".join(cells)), encoding="utf-8")
    outputs = tool.outputs(Tree(results=tmp_path))
    page = next(output.text for output in outputs if output.path == "docs/performance.md")
    assert "9.876" in page and page != (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")


def test_a_figure_without_a_log_is_an_error(tool):
    with pytest.raises(KeyError, match="no figure 'nope'"):
        tool.fill("{{nope}}", {"gn_b8_ofi": "2.00×"})


def hand_run(path) -> bool:
    """A log stored by hand before bench/run_all.py ran its benchmark: its first lines name its
    command, date and load instead of run_all's header."""
    return path.read_text(encoding="utf-8").startswith(("# python bench/", "$ python bench/"))


def test_hand_run_logs_name_their_command_and_date():
    hand = [path for path in sorted(RESULTS.glob("xeon2-*.txt")) if hand_run(path)]
    assert "xeon2-precision-loaded" in {path.stem for path in hand}  # a record kept beside the rerun
    for path in hand:
        first, second = path.read_text(encoding="utf-8").splitlines()[:2]
        assert re.search(r"2026-\d\d-\d\d", first + second), path.name


def test_every_cpu_log_has_its_header_and_repeats(logs):
    cpu_logs = sorted(
        path
        for machine in ("xeon2", "epyc2")
        for path in RESULTS.glob(f"{machine}-*.txt")
        if not hand_run(path)
    )
    assert len(cpu_logs) >= 9
    for path in cpu_logs:
        log = logs.read_log(path)
        assert all(key in log.header for key in HEADER), f"{path.name} lacks bench/run_all.py's header"
        assert re.search(r"avx512f|avx2", log.header["machine"]) and "oneDNN" in log.header["software"]
        if "median" in log.body.lower() and not path.stem.endswith("-digits"):
            assert "Repeats (" in log.body, f"{path.name} gives medians without their repeats"
        assert "---- stderr (exit status" not in path.read_text() or "exit status 0" in path.read_text()


def run_all_module():
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    return run_all


# Logs of an earlier state kept as the "before" of a comparison the docs show, each run by
# run_all's command of its day: the diagram geometry before the layout plan (docs/diagrams.md).
EARLIER_RUNS = {"epyc2-diagram-geometry"}


def test_every_cpu_log_is_the_full_run_of_its_benchmark(logs):
    """Each stored CPU log is bench/run_all.py's full command for that benchmark (not a
    --quick run, not another size), or a hand-run stand-in whose first line is that command;
    a benchmark without a log yet is one the Precision page says is not measured yet."""
    run_all = run_all_module()
    stored: dict[str, list[Path]] = {}  # a benchmark's logs, from each machine the docs quote
    for machine in ("xeon2", "epyc2"):
        for path in RESULTS.glob(f"{machine}-*.txt"):
            stored.setdefault(path.stem.removeprefix(f"{machine}-"), []).append(path)
    records = set(stored) - set(run_all.BENCHMARKS)  # logs of no benchmark: hand-run records only
    assert "precision-loaded" in records, records
    assert all(hand_run(path) for name in records for path in stored[name]), records
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    for name, benchmark in run_all.BENCHMARKS.items():
        command = benchmark.command()
        if name not in stored:
            assert f"(not measured yet: no `bench/results/xeon2-{name}.txt`" in page, name
        for path in stored.get(name, []):
            if hand_run(path):
                first = path.read_text(encoding="utf-8").splitlines()[0]
                assert first[2:].startswith(command), name
            elif path.stem in EARLIER_RUNS:  # the same benchmark's script, as it was run then
                assert logs.read_log(path).header["command"].split()[:2] == command.split()[:2], name
            else:
                assert logs.read_log(path).header["command"] == command, name


def test_a_run_under_atens_cap_compiles_into_an_inductor_cache_of_its_own(monkeypatch):
    """Inductor's cache keys leave out ATen's cap (torch 2.14.1): a native run loading what the
    AVX2-emulated run compiled aborted with heap corruption (CI, issue 25's stop)."""
    run_all = run_all_module()
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    native = run_all.process_environment(run_all.BENCHMARKS["isa"].env)
    emulated = run_all.process_environment(run_all.BENCHMARKS["isa-avx2-emulated"].env)
    assert "TORCHINDUCTOR_CACHE_DIR" not in native  # torch's own default
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    assert emulated["TORCHINDUCTOR_CACHE_DIR"] != default_cache_dir()
    assert emulated["ATEN_CPU_CAPABILITY"] == "avx2"


def test_run_all_quick_commands_are_tiny_versions_of_the_full_ones():
    """--quick runs the same script with smaller settings: the precision ones at batch 1 without
    compiling, so they finish in a minute."""
    run_all = run_all_module()
    for name in ("precision", "precision-lineage"):
        benchmark = run_all.BENCHMARKS[name]
        assert benchmark.script == "precision.py" and "--no-compile" in benchmark.quick
    assert set(run_all.LINEAGE) <= set(run_all.BENCHMARKS["precision-lineage"].args)


def test_every_log_the_docs_name_is_stored():
    named = set()
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        # not the "(not measured yet: no `bench/results/NAME`" of a benchmark whose log is still to come
        named |= set(re.findall(r"(?<!no `)bench/results/([\w.-]+\.txt)", doc.read_text(encoding="utf-8")))
    assert named, "the docs name no log"
    assert sorted(name for name in named if not (RESULTS / name).is_file()) == []


def digits_wall(logs) -> float:
    return logs.number(logs.read_log(RESULTS / "epyc2-digits.txt").tables[0].row("default")["wall s"])


def small_compile(logs) -> float:
    table = logs.read_log(RESULTS / "xeon2-compile.txt").table("Fresh process")
    return logs.number(table.row("small")["compile s"])


# Prose outside the generated regions: (doc, pattern whose group is the quoted figure in
# seconds, the measured figure). "About N s" must be within a quarter of the measurement.
CLAIMS = (
    (
        "README.md",
        r"test accuracy in about (\d+) s on two CPU cores \(`bench/results/epyc2-digits.txt`",
        digits_wall,
    ),
    (
        "docs/getting-started.md",
        r"in about (\d+) s on two CPU cores \(`bench/results/epyc2-digits.txt`",
        digits_wall,
    ),
    (
        "docs/export.md",
        r"small test model takes about (\d+) s on 2 CPU cores \(`bench/results/xeon2-compile.txt`",
        small_compile,
    ),
)


@pytest.mark.parametrize(("doc", "pattern", "measured"), CLAIMS, ids=[c[0] for c in CLAIMS])
def test_prose_figures_match_their_logs(logs, doc, pattern, measured):
    match = re.search(pattern, (ROOT / doc).read_text(encoding="utf-8"))
    assert match, f"{doc} no longer says {pattern!r}: update the claim here with the doc"
    quoted, actual = float(match[1]), measured(logs)
    assert abs(quoted - actual) <= 0.25 * actual, f"{doc} says about {quoted:g} s; the log says {actual:g} s"


def times_and_ratios(logs, paths) -> tuple[set[str], set[str]]:
    """Every cell of the logs' tables and every figure on their other lines, and every ratio of
    two "ms / batch" times of one table (any two rows, either way round), to two decimals."""
    cells, ratios = set(), set()
    for path in paths:
        log = logs.read_log(path)
        # figures the script printed on a line of its own (the matmul probes), outside tables
        lines = "\n".join(line for line in log.body.splitlines() if not line.startswith("|"))
        cells |= set(re.findall(r"\d+\.\d+", lines))
        for table in log.tables:
            cells |= {cell.replace("×", "").replace("%", "").strip() for row in table.rows for cell in row}
            if "ms / batch" not in table.headers:
                continue
            column = table.headers.index("ms / batch")
            times = [float(row[column]) for row in table.rows]
            ratios |= {f"{a / b:.2f}" for a in times for b in times if b}
    return cells, ratios


def test_the_precision_figures_come_from_its_stored_runs(logs):
    """Each time or ratio the Precision section quotes is a cell of a table in its stored runs
    (bench/precision.py), or the ratio of two times in the same table of the same log."""
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    section = page.split("## Precision", 1)[1].split("\n## ", 1)[0]
    names = (
        "xeon2-precision.txt",
        "xeon2-precision-loaded.txt",
        "xeon2-precision-ceil-bug.txt",
        "xeon2-precision-lineage.txt",
    )
    paths = [RESULTS / name for name in names if (RESULTS / name).is_file()]
    cells, ratios = times_and_ratios(logs, paths)
    # every time and ratio, but the targets ("≥ 1.2×")
    quoted = set(re.findall(r"(?<![\d.])(?<!≥ )(\d+\.\d+)(?=×| ms)", section))
    assert quoted, "the section quotes no figure"
    assert sorted(figure for figure in quoted if figure not in cells and figure not in ratios) == []


def test_a_ratio_across_two_tables_is_not_accepted(logs, tmp_path):
    """The check above can fail: a batch-8 time over a batch-1 time is no ratio of one table,
    while two times of the batch-8 table are."""
    log = logs.read_log(RESULTS / "xeon2-precision.txt")
    cells, ratios = times_and_ratios(logs, [RESULTS / "xeon2-precision.txt"])

    def ms(batch: int, model: str) -> float:
        return float(log.table(f"Batch {batch}:").row(model)["ms / batch"])

    peer = "torch.compile(torchvision CL + bf16 autocast)"
    eager, frozen = "optimize_for_inference bf16", "optimize_for_inference bf16, compile_frozen"
    assert f"{ms(8, eager) / ms(8, frozen):.2f}" in ratios
    across = {f"{ms(8, a) / ms(1, b):.2f}" for a in (peer, eager, frozen) for b in (peer, eager, frozen)}
    assert across - ratios - cells, "every batch-8/batch-1 ratio happens to be a same-table one too"


LINEAGE_LOG = """Machine: test
xception (3×299×299): first calls (compiling, packing) took 30 s
xception, batch 1:
| model                                       | ms / batch | images / s | vs twin fp32 | vs best peer | vs our bf16 |
|---------------------------------------------|-----------:|-----------:|-------------:|-------------:|------------:|
| timm legacy_xception fp32                   |       80.0 |       12.5 |        1.00× |        0.50× |       0.25× |
| timm legacy_xception CL + bf16 autocast     |       40.0 |       25.0 |        2.00× |        1.00× |       0.50× |
| optimize_for_inference bf16                 |       20.0 |       50.0 |        4.00× |        2.00× |       1.00× |
| optimize_for_inference bf16, compile_frozen |       16.0 |       62.5 |        5.00× |        2.50× |       1.25× |
| quantize int8                               |       10.0 |      100.0 |        8.00× |        4.00× |       2.00× |
"""


def test_the_lineage_table_is_read_from_the_scripts_output(logs, tmp_path):
    path = tmp_path / "xeon2-precision-lineage.txt"
    path.write_text(LINEAGE_LOG, encoding="utf-8")
    rendered = precision_figures.lineage_table(logs.read_log(path))
    row = rendered.splitlines()[-1]
    # spec, twin, fp32, best peer, ours bf16 and its ratio, compile_frozen and its ratio, int8 and its ratio
    assert row == (
        "| xception (1) | timm legacy_xception | 80.0 | 40.0 | 20.0 | 2.00× | 16.0 | 2.50× | 10.0 | 2.00× |"
    )


def test_the_emulated_isa_run_says_so(logs):
    """The AVX2 rows come from an AVX-512 machine under oneDNN's and ATen's AVX2 caps: its log's
    header says so and which variables, the kernels it ran are AVX2's, and the page labels it."""
    log = logs.read_log(RESULTS / "epyc2-isa-avx2-emulated.txt")
    environment = log.header["environment"]
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in environment and "ATEN_CPU_CAPABILITY=avx2" in environment
    assert "emulated" in environment and "not that CPU's speed" in environment
    assert re.search(r"^archbuilder sees: avx2; ATen AVX2; oneDNN capped at AVX2", log.body, re.MULTILINE)
    kernels = re.findall(
        r"^- (?:optimize_for_inference|quantize) [^:]*: convolution .*$", log.body, re.MULTILINE
    )
    assert kernels and all(":avx2" in line and "avx512" not in line for line in kernels)
    native = logs.read_log(RESULTS / "epyc2-isa.txt")
    assert "environment" not in native.header and "avx512_core" in native.body
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    section = page.split("## On CPUs without AVX-512", 1)[1].split("\n## ", 1)[0]
    assert "kernels of AVX2, not an AVX2 CPU's speed" in section
    assert "reported in the issue, not measured here" in section
