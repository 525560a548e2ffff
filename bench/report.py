"""The Markdown report of a run: the machine and the load, then one table per scenario, Keyhouse
beside its reference on each database and at each number of workers.

`bench/run.py` prints it and writes it to bench/results/report.md after every run; this renders
it again from a results document, without measuring anything:

    .venv/bin/python bench/report.py [bench/results/latest.json]
"""

import argparse
import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from account_data import ACCOUNT_LOGIN_PATH
from harness import RESULTS_DIR, RESULTS_FILE, ROOT, TOKEN_PATH
from logins import LOGIN_PATH, LOGIN_RUNS

REPORT_FILE = RESULTS_DIR / "report.md"
RSS_COLUMNS = (("RSS max MiB", True), ("RSS mean MiB", True))
SPLIT_COLUMN = ("busiest worker", True)
MEASURED_COLUMNS = (("req/s", True), ("p50 ms", True), ("p99 ms", True), ("CPU µs/req", True))

Document = Mapping[str, Any]  # what bench/run.py writes to bench/results/latest.json
Row = Mapping[str, Any]


def table(columns: Sequence[tuple[str, bool]], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, each column padded to one width so that it reads as text too.

    `columns`: each column's title, and whether it is right-aligned (numbers).
    """
    titles = [title for title, _ in columns]
    widths = [max(3, *(len(cell) for cell in cells)) for cells in zip(titles, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, (_, right) in zip(cells, widths, columns, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join(
        "-" * (width + 1) + ":" if right else "-" * (width + 2)
        for width, (_, right) in zip(widths, columns, strict=True)
    )
    return "\n".join([line(titles), f"|{rule}|", *(line(row) for row in rows)])


def _ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f}"


def _rss(row: Row) -> list[str]:
    """Max and mean resident memory of the row's workers, MiB; blank where not measured."""
    memory = row.get("rss")
    if not memory:
        return ["", ""]
    return [f"{memory['max_mib']:.1f}", f"{memory['mean_mib']:.1f}"]


def _split(row: Row) -> str:
    """With several workers, the busiest worker's largest CPU share in any of the row's rounds;
    blank with one worker."""
    shares = [run.get("busiest_worker_share") for run in row.get("rounds", [])]
    shares = [share for share in shares if share is not None]
    return f"{max(shares):.0%}" if shares else ""


def _ratio(row: Row, target: float) -> str:
    if row.get("ratio") is None:
        return ""
    verdicts = {True: " ok", False: f" below {target}", None: ""}
    return f"{row['ratio']:.2f}{verdicts[row.get('meets_target')]}"


def _measured(row: Row) -> list[str]:
    """req/s, p50 and p99, and the CPU time per request: medians of the rounds."""
    cpu = [run["cpu_us_per_request"] for run in row["rounds"] if run.get("cpu_us_per_request")]
    shown = f"{statistics.median(cpu):.0f}" if cpu else ""
    return [f"{row['rps']:.1f}", _ms(row["p50_us"]), _ms(row["p99_us"]), shown]


def header(document: Document) -> str:
    settings, machine = document["settings"], document["machine"]
    versions, keyhouse = document["versions"], document["keyhouse"]
    workers = [int(count) for count in settings["workers"]]
    changed = len(keyhouse["uncommitted"])
    wrk = versions.get("wrk", "wrk").split(" Copyright")[0]  # `wrk -v`: version, then notice
    rounds = f"{settings['rounds']} round{'s' if settings['rounds'] > 1 else ''}"
    reads = settings.get("read_duration", settings["duration"])
    lines = [
        "# Keyhouse performance",
        "",
        f"Measured {document['finished_at']} by `{document['command']}`.",
        "",
        f"- **Keyhouse** `{keyhouse['commit'][:12] or 'unknown'}`"
        + (f", with uncommitted changes to {changed} files" if changed else "")
        + f"; Python {versions['python']}, FastAPI {versions.get('fastapi', '?')}, "
        f"Uvicorn {versions.get('uvicorn', '?')} ({settings['loop']}, {settings['http']}).",
        f"- **Machine**: {machine['cpus']} CPUs, {machine['platform']}; 1-minute load average "
        f"{machine['loadavg_1min_before']:.2f} before, {machine['loadavg_1min_after']:.2f} after.",
        f"- **Servers**: `keyhouse serve --workers N --no-access-log` and its reference app on "
        f"`uvicorn --workers N` with the same options, N = {', '.join(map(str, workers))}; "
        f"databases {', '.join(settings.get('databases', []))}.",
        f"- **Load**: {wrk}, `-t{settings['threads']} -c{settings['connections']}` over "
        f"loopback; {settings['duration']} s per measured run ({reads} s for the protected "
        f"reads) after {settings['warmup']} s of warm-up; {rounds} alternating Keyhouse and its "
        "references; the medians of the rounds.",
        "- **RSS**: the resident memory (VmRSS) of each worker process (with one worker, the "
        "server process itself), read after the scenario's measured rounds with the server "
        "still up; the max and the mean across the workers.",
        "- **CPU µs/req**: the CPU time (user and system) the server's workers spent during a "
        "run, per request completed; the median of the rounds. Other load on the machine "
        "inflates it far less than it lowers req/s.",
        "- **Targets** apply to one worker; with more, ratios are shown without a verdict.",
        "- **Busiest worker**: with several workers, which one accepts each of wrk's keep-alive "
        "connections is the kernel's race, so a run may load one worker and leave the other "
        "idle. The column gives the largest share of the server's CPU time that one worker "
        "spent in any measured round (50% is an even split of two); a run above 70% is "
        "measured again, up to 4 times, and the most even attempt kept.",
    ]
    busiest = max(workers)
    if busiest >= machine["cpus"]:
        lines.append(
            f"- **{machine['cpus']} CPUs for {busiest} workers and wrk**: the load generator "
            f"competes with the workers for the cores, so the {busiest}-worker figures are "
            f"below what {busiest} workers serve with a core to spare for the clients."
        )
    return "\n".join(lines)


def _comparison_table(rows: Sequence[Row], keys: Sequence[str], min_ratio: float) -> str:
    """Keyhouse's rows and its reference's: the `keys` that name a row (`workers` is a number,
    right-aligned), then what was measured, the memory, the workers' split and the ratio."""
    columns = [
        *((key, key == "workers") for key in keys),
        *(*MEASURED_COLUMNS, *RSS_COLUMNS, SPLIT_COLUMN),
        ("ratio", False),
    ]
    cells = [
        [
            *(str(row[key]) for key in keys),
            *(*_measured(row), *_rss(row), _split(row), _ratio(row, min_ratio)),
        ]
        for row in rows
    ]
    return table(columns, cells)


def issuance_section(document: Document) -> str:
    target = document["targets"]["issuance"]
    rows = document["results"]
    return "\n".join(
        [
            "## Token issuance",
            "",
            f"`POST {TOKEN_PATH}`, Keyhouse against the bare FastAPI app of `bench/baseline.py` "
            f"(same Uvicorn, same response bytes). Target: `{target['grant']}` at "
            f"{target['min_ratio']}x the baseline's req/s or better.",
            "",
            _comparison_table(
                rows, ("database", "workers", "grant", "target"), target["min_ratio"]
            ),
        ]
    )


def _vs(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}"


def _read_targets(targets: Mapping[str, Any]) -> str:
    """The targets of the protected reads, in one sentence per read."""
    said = []
    for name, read in targets["reads"].items():
        parts = [f"{read['min_rps']:,.0f} req/s or more"] if read["min_rps"] else []
        parts += [f"{read['min_vs_bare']}x the bare app"] if read["min_vs_bare"] else []
        parts += [f"p99 under {read['max_p99_ms']:.0f} ms"] if read["max_p99_ms"] else []
        said.append(f"`{name}` " + (", ".join(parts) if parts else "no throughput target"))
    return (
        "Targets, one worker: "
        + "; ".join(said)
        + f"; every read at {targets['min_vs_unvalidated']}x its unvalidated twin or better "
        f"(validation under {1 - targets['min_vs_unvalidated']:.0%}); RSS under "
        f"{targets['max_rss_mib']:.0f} MiB per worker."
    )


def protected_section(document: Document) -> str:
    targets = document["targets"]["protected"]
    columns = [
        *(("database", False), ("workers", True), ("read", False), ("target", False)),
        *(*MEASURED_COLUMNS, *RSS_COLUMNS, SPLIT_COLUMN),
        *(("vs bare", True), ("vs unvalidated", True), ("vs customer", True)),
        ("targets", False),
    ]
    verdicts = {True: "ok", False: "missed", None: ""}
    rows = [
        [
            *(row["database"], str(row["workers"]), row["read"], row["target"]),
            *(*_measured(row), *_rss(row), _split(row)),
            *(_vs(row["vs_bare"]), _vs(row["vs_unvalidated"]), _vs(row.get("vs_customer"))),
            verdicts[row["meets_target"]],
        ]
        for row in document["protected"]
    ]
    paths = ", ".join(f"`{name}` `GET {read['path']}`" for name, read in targets["reads"].items())
    return "\n".join(
        [
            "## Protected reads",
            "",
            f"Reads with an implicit bearer token ({paths}; `orders` with the shopper's customer "
            "token beside it, `account-orders` with an account member's account token, and "
            "`vs customer` its req/s over `orders`'), Keyhouse against itself with bearer "
            "validation bypassed "
            "(`unvalidated`, bench/unvalidated.py) and against a bare FastAPI app running the "
            "same SQL (`bare`, bench/bare_reads.py). " + _read_targets(targets),
            "",
            table(columns, rows),
        ]
    )


def _per_worker(row: Row) -> str:
    """Logins per second per worker; blank for the probe, which measures latency."""
    if row["target"] not in LOGIN_RUNS:
        return ""
    return f"{row['rps'] / row['workers']:.1f}"


def _login_cpu(row: Row) -> str:
    """The server's CPU time per login (the median of the rounds) where it was measured: the
    flood alone."""
    cpu = [run["cpu_us_per_request"] for run in row["rounds"] if run.get("cpu_us_per_request")]
    return f"{statistics.median(cpu) / 1000:.1f}" if cpu else ""


def logins_section(document: Document) -> str:
    limit = document["targets"]["logins"]["max_implicit_p99_ms_in_flood"]
    columns = [
        *(("database", False), ("workers", True), ("run", False), ("conns", True)),
        *(("req/s", True), ("logins/s per worker", True), ("p50 ms", True), ("p99 ms", True)),
        ("CPU ms/login", True),
        *(*RSS_COLUMNS, ("vs customer", True), ("target", False)),
    ]
    verdicts = {True: "ok", False: f"above {limit:.0f} ms", None: ""}
    rows = [
        [
            *(row["database"], str(row["workers"]), row["target"], str(row["connections"])),
            *(f"{row['rps']:.1f}", _per_worker(row)),
            *(_ms(row["p50_us"]), _ms(row["p99_us"]), _login_cpu(row)),
            *(*_rss(row), _vs(row.get("ratio"))),
            verdicts[row["meets_target"]],
        ]
        for row in document["logins"]
    ]
    return "\n".join(
        [
            "## Customer and account logins",
            "",
            f"Customers' `POST {LOGIN_PATH}` and account members' `POST {ACCOUNT_LOGIN_PATH}` "
            "(argon2id, the same parameters) flooding the server in turn, and a small probe of "
            f"implicit `POST {TOKEN_PATH}`: `logins` the flood alone, `implicit` the probe "
            "alone, `logins+probe` the flood while probed, `implicit+flood` the probe inside "
            "the flood; `account …` likewise with account logins, and `vs customer` their "
            "req/s over the customers' twin row's. `CPU ms/login`: what the server spent from "
            "the start of a flood alone until its queue was drained, per login (those wrk "
            "completed, one in flight per connection, the drain's). Target: the probe's p99 in "
            f"either flood under {limit:.0f} ms.",
            "",
            table(columns, rows),
        ]
    )


def _optional(value: float | None, format_spec: str) -> str:
    return "" if value is None else format(value, format_spec)


def _per_cpu_second(row: Row) -> float | None:
    """What the row's server would serve with each of its CPUs to itself: its workers over the
    CPU time one request cost them."""
    cpu = row["cpu_us_per_request"]
    return row["workers"] * 1e6 / cpu if cpu else None


def _sizing_cells(row: Row, pinned: Row | None) -> list[str]:
    """A row of a layout's table; beside the pinned worker's row (`pinned`), a second layout's
    rows give their growth over it, in req/s and in req/s per CPU-second."""
    cells = [
        *(row["database"], row["target"], str(row["connections"])),
        *(f"{row['rps']:.1f}", _ms(row["p99_us"]), _optional(row["cpu_us_per_request"], ".0f")),
        _optional(_per_cpu_second(row), ".0f"),
        *(_optional(row["others_cpu_share"], ".0%"), _vs(row["vs_baseline"])),
    ]
    if pinned is None:
        counted = ("statements", "checkouts", "transactions")
        return [*cells, *(_optional(row[name], ".2f") for name in counted)]
    grown, alone = _per_cpu_second(row), _per_cpu_second(pinned)
    return [*cells, _vs(row["growth"]), _vs(grown / alone if grown and alone else None)]


SIZING_COLUMNS = (
    *(("database", False), ("row", False), ("conns", True), ("req/s", True), ("p99 ms", True)),
    *(("CPU µs/req", True), ("req/s per CPU-second", True), ("others' CPU", True)),
    ("vs baseline", True),
)


def _sizing_notes(sizing: Mapping[str, Any]) -> list[str]:
    notes = []
    for database, note in sizing["databases"].items():
        before, after = note["loadavg"]
        held = ", ".join(f"{layout}: {n}" for layout, n in note["connections"].items())
        notes.append(
            f"- **{database}**: password hashes `{note['password_hash']}`; 1-minute load "
            f"average {before:.2f} before the rounds, {after:.2f} after"
            + (f"; most connections to it held by one worker after a run: {held}" if held else "")
            + "."
        )
    return notes


def sizing_section(document: Document) -> str:
    """bench/sizing.py's rows: one worker pinned to a CPU, then two workers on both beside it."""
    sizing = document["sizing"]
    pinned_layout, *others = (layout["name"] for layout in sizing["layouts"])
    rows = sizing["rows"]
    pinned = {(r["database"], r["target"]): r for r in rows if r["layout"] == pinned_layout}
    counted = (("statements/req", True), ("checkouts/req", True), ("commits/req", True))
    tables = [
        f"### {pinned_layout}",
        "",
        table([*SIZING_COLUMNS, *counted], [_sizing_cells(r, None) for r in pinned.values()]),
    ]
    grown = (("vs 1 worker", True), ("vs 1 worker per CPU-second", True))
    for layout in others:
        cells = [
            _sizing_cells(r, pinned.get((r["database"], r["target"])))
            for r in rows
            if r["layout"] == layout
        ]
        tables += ["", f"### {layout}", "", table([*SIZING_COLUMNS, *grown], cells)]
    return "\n".join(
        [
            "## Sizing per CPU",
            "",
            f"{pinned_layout} (`taskset`), wrk on the other CPU; "
            + (
                f"{', '.join(others)}, wrk unpinned, in the same rounds, each run beside the "
                "pinned worker's; "
                if others
                else ""
            )
            + "the medians of the rounds. `CPU µs/req`: what the server's workers spent per "
            "request; `req/s per CPU-second`: the workers over it, what they would serve with a "
            "CPU each to themselves. `others' CPU`: the share of the server's CPUs that other "
            "processes took during its runs. `vs baseline`: req/s over the bare FastAPI app's, "
            "placed alike. `statements/req`, `checkouts/req`, `commits/req`: from a counting "
            "twin of the pinned worker under the same load (bench/counted.py). `vs 1 worker`: "
            "req/s, and req/s per CPU-second times the workers, over the pinned worker's.",
            "",
            *tables,
            "",
            *_sizing_notes(sizing),
        ]
    )


def render(document: Document) -> str:
    sections = [header(document)]
    if document["results"]:
        sections.append(issuance_section(document))
    if document["protected"]:
        sections.append(protected_section(document))
    if document["logins"]:
        sections.append(logins_section(document))
    if document.get("sizing"):
        sections.append(sizing_section(document))
    sections.append(_verdict(document))
    return "\n\n".join(sections) + "\n"


def _verdict(document: Document) -> str:
    misses: list[str] = document["misses"]
    if misses:
        return "\n".join(["## Targets missed", "", *(f"- {miss}" for miss in misses)])
    rows = [*document["results"], *document["protected"], *document["logins"]]
    if any(row.get("meets_target") is not None for row in rows):
        return "Every target was met."
    if not rows:
        return "No target applies to these runs (sizing has none)."
    return "No target applies to these runs (the targets are for one worker)."


def write(document: Document, path: Path = REPORT_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS_FILE)
    args = parser.parse_args(argv)
    document = json.loads(args.results.read_text())
    print(render(document), end="")
    written = write(document)
    print(f"report written to {written.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
