"""Figures quoted in docs/reliability.md, docs/search.md and docs/diagrams.md are their
stored run's (bench/results/, written by bench/run_all.py) or the code's real output.

Each test reads the figure from the page and the truth from the log or from a fresh
rendering, so editing either one alone makes it fail.
"""

from __future__ import annotations

import re

import pytest

from tools.docs import benchlogs

from .conftest import ROOT
from .test_docs import DOCS, fences

RESULTS = ROOT / "bench" / "results"


@pytest.fixture(scope="module")
def logs():
    return benchlogs


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def first_load(log) -> str:
    """The 1-minute load average bench/run_all.py recorded before the run."""
    return log.header["load average before"].split()[0]


def integer(text: str) -> int:
    return int(text.replace(",", ""))


# ---- docs/reliability.md: the fuzzers' console blocks are their stored runs ----


# The fuzzers' stored runs: the spec fuzzers' on the Xeon, the importers' and the space files'
# (issue 26) on the EPYC.
FUZZ_LOGS = ["xeon2-fuzz", "xeon2-fuzz-structural", "epyc2-fuzz-importers", "epyc2-fuzz-space"]


def fuzz_blocks():
    blocks = [b for b in fences(DOCS / "reliability.md") if b.lang == "console"]
    assert len(blocks) == len(FUZZ_LOGS), "reliability.md shows each fuzzer's stored run"
    return blocks


@pytest.mark.parametrize("name", FUZZ_LOGS)
def test_the_fuzzer_runs_shown_are_the_stored_logs(logs, name):
    log = logs.read_log(RESULTS / f"{name}.txt")
    shown = next(b for b in fuzz_blocks() if b.text.startswith(f"$ {log.header['command']}\n"))
    assert shown.text.splitlines()[1:] == log.body.strip().splitlines()
    assert "exit status" not in log.path.read_text(encoding="utf-8"), "the stored fuzz run failed"
    failures = [int(n) for n in re.findall(r"^\s*failures\s+(\d+)$", log.body, re.MULTILINE)]
    assert not any(failures), f"{name}: the stored run has failures"  # the spec fuzzers exit 1 instead


def test_the_fuzzer_runs_name_their_logs_and_load(logs):
    text = section(page("reliability.md"), "Fuzzing")
    for name in FUZZ_LOGS:
        log = logs.read_log(RESULTS / f"{name}.txt")
        assert f"bench/results/{name}.txt" in text
        assert f"load average {first_load(log)}" in text, f"the page does not give {name}'s load"


def test_the_text_fuzzer_covers_every_shipped_spec(logs):
    line = logs.read_log(RESULTS / "xeon2-fuzz.txt").search(r"^(\d+) mutants of (\d+) specs")
    specs = len(list((ROOT / "specs").glob("*.yaml")))
    assert int(line[2]) == specs and int(line[1]) == 5000 // specs * specs
    text = " ".join(section(page("reliability.md"), "Fuzzing").split())
    assert f"among the {specs} shipped specs make {5000 // specs} each" in text


# ---- docs/search.md: the study and the sampling speed ----


@pytest.fixture(scope="module")
def study(logs):
    return logs.read_log(RESULTS / "xeon2-search.txt")


def trial_lines(study) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^trial (\d+): (.*)$", study.body, re.MULTILINE)}


def test_the_study_front_is_the_stored_one(logs, study):
    doc = re.search(
        r"\| trial \| test accuracy \| MACs \| params \| decisions \|\n\|[-:|]+\|\n((?:\|.*\n)+)",
        page("search.md"),
    )
    shown = [[c.strip() for c in row.strip().strip("|").split("|")][:4] for row in doc[1].splitlines()]
    stored = [row[:4] for row in study.table("Study `inception-digits`").rows]
    assert shown == stored


def test_the_study_counts_and_times_are_the_stored_ones(study):
    text = " ".join(section(page("search.md"), "A real search: the digits").split())
    trials, seconds = study.search(r"^this worker: (\d+) trials in ([\d.]+) s").groups()
    assert f"**{trials} trials in {seconds} s**" in text
    assert f"({study.header['took'].removesuffix(' s')} s with start-up" in text
    done, pruned = study.search(r"(\d+) complete, (\d+) pruned before building").groups()
    assert f"**{done} complete, {pruned} pruned before building**" in text
    lines = trial_lines(study)
    over = [
        re.search(r"max_macs: [\d,]+ \(([\d.]+ M)\)", line)[1]
        for line in lines.values()
        if line.startswith("pruned")
    ]
    assert len(over) == int(pruned) and f"({', '.join(over[:-1])} and {over[-1]} MACs)" in text
    times = [float(m[1]) for m in (re.search(r"MACs, ([\d.]+) s;", line) for line in lines.values()) if m]
    assert len(times) == int(done) and f"a trial took {min(times)}–{max(times)} s" in text
    assert f"load average {study.header['load average before'].split()[0]} before it" in text


def test_the_repeated_candidate_and_the_base_are_as_quoted(study):
    """TPE's four tries of trial 17's candidate, and 17's MACs against the base spec's."""
    import archbuilder

    text = " ".join(section(page("search.md"), "A real search: the digits").split())
    lines = trial_lines(study)
    accuracies = [re.match(r"accuracy ([\d.]+%)", lines[n])[1] for n in (14, 15, 16, 17)]
    assert len({re.search(r"\{.*\}", lines[n])[0] for n in (14, 15, 16, 17)}) == 1, "not one candidate"
    assert f"{', '.join(accuracies[:3])} and {accuracies[3]}" in text
    base = archbuilder.summarize(archbuilder.load_spec(ROOT / "specs" / "inception-digits.yaml"))
    macs_17 = integer(re.search(r"([\d,]+) MACs", lines[17])[1])
    assert f"({macs_17 / 1e6:.2f} M MACs against the base's {base.inference_macs / 1e6:.2f} M)" in text


SPEED_ROWS = {  # the page's space column -> the log's
    "3a and 3b widths, choices of 3": "3a and 3b widths, choices of 3",
    "all 54 Inception widths, choices of 3": "all 54 widths, choices of 3",
    "all 54 widths, integer ranges 0.5×–1.5×": "all 54 widths, ranges 0.5x-1.5x",
    "`load_spec` + `summarize` of googlenet.yaml": "googlenet.yaml: load_spec + summarize",
}


def speed_table():
    text = section(page("search.md"), "Speed")
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]
    return text, {row[0]: row for row in rows[1:]}


def raw_size(cell: str) -> float:
    mantissa, _, exponent = cell.partition(" · 10^")
    return float(mantissa) * 10 ** int(exponent or 0)


def test_the_sampling_table_is_the_stored_run(logs):
    log = logs.read_log(RESULTS / "xeon2-space.txt")
    stored = log.tables[0]
    _, shown = speed_table()
    assert sorted(shown) == sorted(SPEED_ROWS)
    for name, row in shown.items():
        want = stored.row(SPEED_ROWS[name])
        decisions, size, judged, rejected, wall, each, cpu = row[1:]
        assert decisions in (want["decisions"], "—" if want["decisions"] == "0" else None), name
        assert raw_size(size) == pytest.approx(float(want["raw size"]), rel=0.02), name
        assert integer(judged) == int(want["judged"]), name
        assert rejected == want["rejected"].replace("-", "—"), name
        assert (wall, each, cpu) == (want["s"], want["ms each"], want["CPU ms each"]), name


def test_the_sampling_prose_follows_the_table(logs):
    log = logs.read_log(RESULTS / "xeon2-space.txt")
    text, shown = speed_table()
    spaces = [row for name, row in shown.items() if "summarize" not in name]
    walls = sorted(row[5] for row in spaces)
    assert f"took {walls[0]}–{walls[-1]} s" in text
    cpu = [float(row[7]) for row in spaces]
    quoted = float(re.search(r"costs about ([\d.]+) ms of CPU", text)[1])
    assert all(abs(quoted - value) <= 0.1 for value in cpu), (quoted, cpu)
    assert f"load average {first_load(log)} before it" in text


# ---- docs/diagrams.md: picture sizes and page weights ----


def svg_size(svg: str) -> tuple[int, int]:
    match = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', svg)
    return int(match[1]), int(match[2])


@pytest.fixture(scope="module")
def googlenet_sizes(tmp_path_factory) -> dict[tuple[str, str], tuple[int, int]]:
    """GoogLeNet drawn by the embedded Graphviz at each detail and layout."""
    from archbuilder import render_diagram

    folder = tmp_path_factory.mktemp("layouts")
    sizes = {}
    for detail in ("branches", "layers"):
        for layout in ("tall", "compact", "auto"):
            path = render_diagram(
                ROOT / "specs" / "googlenet.yaml",
                folder / f"{detail}-{layout}.svg",
                detail=detail,
                layout=layout,
                engine="embedded",
            )
            sizes[detail, layout] = svg_size(path.read_text(encoding="utf-8"))
    return sizes


def test_the_layout_sizes_are_the_drawings(googlenet_sizes):
    text = " ".join(section(page("diagrams.md"), "Layout").split())
    (tw, th), (lw, lh) = googlenet_sizes["branches", "tall"], googlenet_sizes["layers", "tall"]
    assert (
        f"GoogLeNet is {tw}×{th} pt (1:{th / tw:.1f}) at `branches` detail and {lw}×{lh} pt "
        f"(1:{lh / lw:.1f}) at `layers` detail in one column" in text
    )
    (cw, ch), (kw, kh) = googlenet_sizes["branches", "compact"], googlenet_sizes["layers", "compact"]
    assert (
        f"GoogLeNet comes out {cw}×{ch} pt at `branches` detail and {kw}×{kh} pt at `layers` detail" in text
    )
    aw, ah = googlenet_sizes["branches", "auto"]
    assert f"(GoogLeNet: two, {aw}×{ah} pt)" in text


def test_the_shipped_default_diagram_is_the_auto_layout(googlenet_sizes):
    shipped = (DOCS / "diagrams" / "googlenet.svg").read_text(encoding="utf-8")
    assert svg_size(shipped) == googlenet_sizes["branches", "auto"]


def test_the_interactive_page_weights_are_the_real_ones(tmp_path):
    """The lightest and heaviest shipped spec's page, within 5% (the page embeds the spec's
    path, so the bytes move a little with where the checkout is)."""
    from archbuilder import render_diagram

    sizes = {
        spec.stem: render_diagram(spec, tmp_path / f"{spec.stem}.html").stat().st_size
        for spec in sorted((ROOT / "specs").glob("*.yaml"))
    }
    quoted = re.search(
        r"pages weigh (\d+) KB \(([\w-]+)\) to (\d+) KB \(([\w-]+)\)", " ".join(page("diagrams.md").split())
    )
    assert quoted, "diagrams.md no longer gives the pages' weights"
    light, heavy = min(sizes, key=sizes.get), max(sizes, key=sizes.get)
    assert (quoted[2], quoted[4]) == (light, heavy)
    assert int(quoted[1]) * 1000 == pytest.approx(sizes[light], rel=0.05)
    assert int(quoted[3]) * 1000 == pytest.approx(sizes[heavy], rel=0.05)


# ---- docs/diagrams.md: the geometry of today's pictures is the stored run's ----


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` but header and rule rows."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()]
    return [row for row in rows if len(row) > 1 and not set(row[0]) <= set("-: ") and row[0] != "detail"]


def _geometry_totals(log) -> dict[tuple[str, str], tuple[str, str, str, str]]:
    """(detail, layout) -> (through nodes, "edges (pairs)", specs with any, crossings), each
    the same for every engine the run drew with."""
    totals: dict[tuple[str, str], set] = {}
    body = log.body.split("Totals per detail and layout:", 1)[1].split("The default PNG", 1)[0]
    for row in _table_rows(body):
        detail, layout, _engine, _pictures, _edges, nodes, edges, specs, pairs, crossings = row[:10]
        shown = f"{edges} ({pairs})" if edges != "0" else "0"
        totals.setdefault((detail, layout), set()).add((nodes, shown, specs, crossings))
    assert all(len(found) == 1 for found in totals.values()), totals
    return {key: found.pop() for key, found in totals.items()}


def test_the_diagram_geometry_table_is_the_stored_runs(logs):
    """The table's "before" cells are the run before the layout plan, its "now" cells today's."""
    before = _geometry_totals(logs.read_log(RESULTS / "epyc2-diagram-geometry.txt"))
    now = _geometry_totals(logs.read_log(RESULTS / "xeon2-diagram-geometry.txt"))
    shown = section(page("diagrams.md"), "How the pictures are measured")
    rows = [row for row in _table_rows(shown) if row[0] != "`--detail`"]
    assert len(rows) == 7, rows
    for detail, layout, nodes, edges, specs, crossings in rows:
        pairs = [cell.split(" → ") for cell in (edges, specs, crossings)]
        if detail == "any":  # tall and LR: nothing through anything, no crossing
            for totals in (before, now):
                zero = [totals[key] for key in totals if key[1] in ("tall", "LR")]
                assert zero and all(t == ("0", "0", "0 of 18", "0") for t in zero)
            continue
        key = (detail.strip("`"), layout.split()[0].strip("`"))
        assert before[key] == (nodes, *(pair[0] for pair in pairs)), key
        assert now[key] == (nodes, *(pair[1] for pair in pairs)), key


def test_the_default_png_figures_are_the_stored_run(logs):
    """The smallest text and the CPU range quoted for the default PNGs are the run's."""
    body = logs.read_log(RESULTS / "xeon2-diagram-geometry.txt").body.split("The default PNG", 1)[1]
    rows = [row for row in _table_rows(body) if row[0] != "spec"]
    by_engine = {engine: [row for row in rows if row[1] == engine] for engine in ("embedded", "system")}
    smallest = min(by_engine["embedded"], key=lambda row: float(row[3]))
    largest = max(by_engine["embedded"], key=lambda row: float(row[3]))
    assert all(int(size) <= 2400 for row in rows for size in row[2].split("×"))
    assert all(float(row[3]) >= 9 for row in rows)
    cpu = {engine: sorted(float(row[5]) for row in found) for engine, found in by_engine.items()}
    irv2 = next(row for row in by_engine["embedded"] if row[0] == "inception-resnet-v2")
    text = " ".join(section(page("diagrams.md"), "How the pictures are measured").split())
    assert (
        f"{smallest[3]} px ({smallest[0]}) to {largest[3]} px ({largest[0]}), "
        f"{cpu['embedded'][0]:.2f} to {cpu['embedded'][-1]:.2f} s of CPU each with the embedded Graphviz "
        f"({cpu['system'][0]:.2f} to {cpu['system'][-1]:.2f} s with the system one)" in text
    )
    assert f"now it is {irv2[2]} px, {irv2[4]} KB, {irv2[5]} s" in text
