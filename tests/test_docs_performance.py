"""Every performance figure in the docs comes from a stored log in bench/results/.

The generated pages and regions must be what tools/render_performance_doc.py makes of the
logs now; the figures quoted in prose elsewhere must match the log they name; every log the
docs quote carries bench/run_all.py's header.
"""

from __future__ import annotations

import re
import shutil

import pytest

from .conftest import ROOT, load_tool

REGENERATE = "python tools/render_performance_doc.py"
RESULTS = ROOT / "bench" / "results"
HEADER = ("command", "date", "commit", "machine", "software", "took")


@pytest.fixture(scope="module")
def tool():
    return load_tool("render_performance_doc")


@pytest.fixture(scope="module")
def logs():
    return load_tool("benchlogs")


def test_generated_docs_are_current(tool):
    values = tool.all_figures()
    for doc in tool.DOCS:
        assert tool.generated(doc, values) == doc.read_text(encoding="utf-8"), (
            f"{doc.relative_to(ROOT)} is stale: run `{REGENERATE}`"
        )


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
    tool.LOGS[0] = tmp_path
    try:
        page = tool.generated(ROOT / "docs" / "performance.md", tool.all_figures())
    finally:
        tool.LOGS[0] = RESULTS
    assert "9.876" in page and page != (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")


def test_a_figure_without_a_log_is_an_error(tool):
    with pytest.raises(KeyError, match="no figure 'nope'"):
        tool.fill("{{nope}}", {"gn_b8_ofi": "2.00×"})


# Logs stored by hand before bench/run_all.py ran their benchmarks: each names its command,
# date and load in its first lines (checked below) instead of run_all's header.
HAND_RUN = {"xeon2-precision", "xeon2-precision-loaded"}


def test_hand_run_logs_name_their_command_and_date():
    for stem in sorted(HAND_RUN):
        first, second = (RESULTS / f"{stem}.txt").read_text(encoding="utf-8").splitlines()[:2]
        assert first.startswith(("# python bench/", "$ python bench/")), stem
        assert re.search(r"2026-\d\d-\d\d", first + second), stem


def test_every_cpu_log_has_its_header_and_repeats(logs):
    cpu_logs = sorted(path for path in RESULTS.glob("xeon2-*.txt") if path.stem not in HAND_RUN)
    assert len(cpu_logs) >= 9
    for path in cpu_logs:
        log = logs.read_log(path)
        assert all(key in log.header for key in HEADER), f"{path.name} lacks bench/run_all.py's header"
        assert re.search(r"avx512f|avx2", log.header["machine"]) and "oneDNN" in log.header["software"]
        if "median" in log.body.lower() and path.stem != "xeon2-digits":
            assert "Repeats (" in log.body, f"{path.name} gives medians without their repeats"
        assert "---- stderr (exit status" not in path.read_text() or "exit status 0" in path.read_text()


def test_every_cpu_log_is_the_full_run_of_its_benchmark(logs):
    """Each stored CPU log is bench/run_all.py's full command for that benchmark (not a
    --quick run, not another size), and every benchmark run_all knows has its log."""
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "bench" / "run_all.py")
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    stored = {
        path.stem.removeprefix("xeon2-"): path
        for path in RESULTS.glob("xeon2-*.txt")
        if path.stem not in HAND_RUN
    }
    assert sorted(stored) == sorted(run_all.BENCHMARKS)
    for name, benchmark in run_all.BENCHMARKS.items():
        command = " ".join(["python", str(benchmark.path), *benchmark.args])
        assert logs.read_log(stored[name]).header["command"] == command, name


def test_every_log_the_docs_name_is_stored():
    named = set()
    for doc in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        named |= set(re.findall(r"bench/results/([\w.-]+\.txt)", doc.read_text(encoding="utf-8")))
    assert named, "the docs name no log"
    assert sorted(name for name in named if not (RESULTS / name).is_file()) == []


def digits_wall(logs) -> float:
    return logs.number(logs.read_log(RESULTS / "xeon2-digits.txt").tables[0].row("default")["wall s"])


def small_compile(logs) -> float:
    table = logs.read_log(RESULTS / "xeon2-compile.txt").table("Fresh process")
    return logs.number(table.row("small")["compile s"])


# Prose outside the generated regions: (doc, pattern whose group is the quoted figure in
# seconds, the measured figure). "About N s" must be within a quarter of the measurement.
CLAIMS = (
    (
        "README.md",
        r"test accuracy in about (\d+) s on two CPU cores \(`bench/results/xeon2-digits.txt`",
        digits_wall,
    ),
    (
        "docs/getting-started.md",
        r"in about (\d+) s on two CPU cores \(`bench/results/xeon2-digits.txt`",
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


def test_the_precision_figures_come_from_its_stored_runs():
    """The Precision section's ratios and times are the stored runs' (bench/precision.py)."""
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    section = page.split("## Precision", 1)[1].split("\n## ", 1)[0]
    logs = "".join(
        (ROOT / "bench" / "results" / name).read_text(encoding="utf-8")
        for name in ("xeon2-precision.txt", "xeon2-precision-loaded.txt")
    )
    quoted = set(re.findall(r"(\d+\.\d+)(?=×| ms)", section))
    assert quoted, "the section quotes no figure"
    # a quoted figure is in a log, or is the ratio of two of its times (int8 against compiled bf16)
    rows = [
        line.split("|") for line in logs.splitlines() if line.startswith("| ") and "ms / batch" not in line
    ]
    times = {float(cells[2]) for cells in rows if len(cells) > 3 and re.fullmatch(r" *\d+\.\d+ *", cells[2])}
    ratios = {f"{a / b:.2f}" for a in times for b in times if b}
    assert sorted(figure for figure in quoted if figure not in logs and figure not in ratios) == []
