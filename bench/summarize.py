#!/usr/bin/env python3
"""Print the benchmark table and the target verdicts from the files bench/run.sh writes.

Usage: summarize.py RESULTS_DIR

Reads RESULTS_DIR/runs.tsv (one row per timed run) and RESULTS_DIR/images.tsv (layer sizes)
and prints Markdown: one table of medians per tool and image, and one line per target of the
toolchain image. Failed runs (an unexpected exit status) are listed and left out of the
medians.
"""

import csv
import re
import statistics
import sys
from pathlib import Path

MIB = 1024 * 1024

# Display order of tools and images.
TOOLS = ["scanner", "baseline", "limit", "skopeo", "syft", "cst"]
TOOL_LABELS = {
    "scanner": "image-compliance-scanner",
    "baseline": "image-compliance-scanner, baseline binary",
    "limit": "limit (curl to igzip -dc, all layers at once)",
    "skopeo": "skopeo copy to an OCI directory",
    "syft": "syft scan --scope all-layers",
    "cst": "container-structure-test --driver tar",
}
IMAGES = ["toolchain", "toolchain-layers", "small"]

# Targets on the toolchain image.
MAX_WALL_OVER_LIMIT = 1.1
MIN_SPEEDUP_OVER_SYFT = 20.0
MIN_SPEEDUP_OVER_CST = 100.0
MAX_RSS_MIB = 64.0
MAX_RSS_GROWTH_OVER_SMALL = 0.10
# Creating the report files dirties a few metadata blocks (directory, inode table, bitmaps),
# which write_bytes counts as well; layer data would be megabytes.
MAX_METADATA_WRITE_BYTES = 64 * 1024

QUOTED_PATH = re.compile(r'"(/[^"]*)"')
NOT_ON_DISK = ("/dev/", "/proc/", "/sys/")


def read_tsv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def order(value, known):
    return known.index(value) if value in known else len(known)


def summarize_runs(rows):
    """Group successful runs by (tool, image) and return their medians."""
    groups = {}
    for row in rows:
        if row["ok"] != "1":
            continue
        groups.setdefault((row["tool"], row["image"]), []).append(row)
    summary = {}
    for key, runs in groups.items():
        summary[key] = {
            "runs": len(runs),
            "wall": statistics.median(float(r["wall_s"]) for r in runs),
            "cpu": statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in runs),
            "rss_mib": statistics.median(int(r["max_rss_kib"]) for r in runs) / 1024,
            "layer_writes": max(int(r["write_bytes"]) - int(r["report_bytes"]) for r in runs),
            "load_min": min(float(r["load1"]) for r in runs),
            "load_max": max(float(r["load1"]) for r in runs),
            "others_max": max(float(r["other_cores"]) for r in runs),
        }
    return summary


def format_bytes(count):
    if count <= 0:
        return "0"
    if count < MIB:
        return f"{count / 1024:.0f} KiB"
    return f"{count / MIB:.0f} MiB"


def print_images(images):
    print("| image | layers | compressed | uncompressed tar |")
    print("|---|---:|---:|---:|")
    per_image = {}
    for row in images:
        entry = per_image.setdefault(row["image"], [0, 0, 0])
        entry[0] += 1
        entry[1] += int(row["compressed_bytes"])
        entry[2] += int(row["uncompressed_bytes"])
    for image in sorted(per_image, key=lambda i: order(i, IMAGES)):
        layers, compressed, uncompressed = per_image[image]
        print(f"| {image} | {layers} | {compressed / MIB:.0f} MiB | {uncompressed / MIB:.0f} MiB |")
    print()


def print_table(summary):
    print(
        "| tool | image | runs | wall (median) | CPU user+sys | peak RSS | wall / limit "
        "| disk writes | load1 at start | other processes |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    keys = sorted(summary, key=lambda k: (order(k[1], IMAGES), order(k[0], TOOLS)))
    for tool, image in keys:
        s = summary[(tool, image)]
        limit = summary.get(("limit", image))
        ratio = f"{s['wall'] / limit['wall']:.2f}x" if limit else "n/a"
        print(
            f"| {TOOL_LABELS.get(tool, tool)} | {image} | {s['runs']} | {s['wall']:.2f} s "
            f"| {s['cpu']:.2f} s | {s['rss_mib']:.0f} MiB | {ratio} "
            f"| {format_bytes(s['layer_writes'])} "
            f"| {s['load_min']:.2f} to {s['load_max']:.2f} | {s['others_max']:.2f} cores |"
        )
    print()


def verdict(met):
    return "met" if met else "MISSED"


def speed_verdicts(summary, scanner, limit):
    """Return the verdicts on wall time: against the limit, syft and container-structure-test."""
    ratio = scanner["wall"] / limit["wall"]
    lines = [
        f"wall <= {MAX_WALL_OVER_LIMIT}x the limit: {ratio:.2f}x "
        f"({scanner['wall']:.2f} s against {limit['wall']:.2f} s): "
        f"{verdict(ratio <= MAX_WALL_OVER_LIMIT)}"
    ]
    for tool, minimum in (("syft", MIN_SPEEDUP_OVER_SYFT), ("cst", MIN_SPEEDUP_OVER_CST)):
        other = summary.get((tool, "toolchain"))
        if not other:
            continue
        speedup = other["wall"] / scanner["wall"]
        lines.append(
            f">= {minimum:.0f}x faster than {tool}: {speedup:.1f}x "
            f"({other['wall']:.2f} s against {scanner['wall']:.2f} s): "
            f"{verdict(speedup >= minimum)}"
        )
    return lines


def memory_verdicts(summary, scanner):
    """Return the verdicts on peak RSS: its bound, and its growth over the small image."""
    lines = [
        f"peak RSS <= {MAX_RSS_MIB:.0f} MiB: {scanner['rss_mib']:.1f} MiB: "
        f"{verdict(scanner['rss_mib'] <= MAX_RSS_MIB)}"
    ]
    small = summary.get(("scanner", "small"))
    if small:
        growth = scanner["rss_mib"] / small["rss_mib"] - 1
        lines.append(
            f"peak RSS within {MAX_RSS_GROWTH_OVER_SMALL:.0%} of the small image's: "
            f"{scanner['rss_mib']:.1f} MiB against {small['rss_mib']:.1f} MiB "
            f"({growth:+.0%}): {verdict(growth <= MAX_RSS_GROWTH_OVER_SMALL)}"
        )
    return lines


def print_targets(summary, results):
    scanner = summary.get(("scanner", "toolchain"))
    limit = summary.get(("limit", "toolchain"))
    if not scanner or not limit:
        print("No successful scanner and limit runs on the toolchain image: no verdicts.")
        return

    lines = speed_verdicts(summary, scanner, limit)
    lines += memory_verdicts(summary, scanner)
    lines.append(writes_verdict(summary, results))
    for line in lines:
        print(f"- {line}")
    print()


def files_written_outside_reports(results):
    """Return the paths outside the reports directory in scanner-writes.txt, or None when
    the file is missing."""
    path = results / "scanner-writes.txt"
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    reports_dir = lines[0].removeprefix("# reports directory: ") if lines else ""
    outside = set()
    for line in lines[1:]:
        for written in QUOTED_PATH.findall(line):
            if written.startswith(NOT_ON_DISK):
                continue
            if written != reports_dir and not written.startswith(reports_dir + "/"):
                outside.add(written)
    return sorted(outside)


def writes_verdict(summary, results):
    writes = max(
        s["layer_writes"] for (tool, _), s in summary.items() if tool in ("scanner", "baseline")
    )
    outside = files_written_outside_reports(results)
    if outside is None:
        files = "no strace list of the files written"
    elif outside:
        files = f"files written outside the reports directory: {', '.join(outside)}"
    else:
        files = "strace shows writes to the report files only"
    met = writes <= MAX_METADATA_WRITE_BYTES and outside == []
    return (
        f"no layer data written: write_bytes minus the reports' pages is at most "
        f"{writes} bytes over all runs (file system metadata of the reports; limit "
        f"{MAX_METADATA_WRITE_BYTES // 1024} KiB), and {files}: {verdict(met)}"
    )


def print_failures(rows):
    failed = [r for r in rows if r["ok"] != "1"]
    if not failed:
        return
    print("Failed runs, left out of the medians:")
    for row in failed:
        print(f"- {row['tool']} on {row['image']}, round {row['round']}: exit {row['exit']}")
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py RESULTS_DIR")
    results = Path(sys.argv[1])
    rows = read_tsv(results / "runs.tsv")
    summary = summarize_runs(rows)
    print_images(read_tsv(results / "images.tsv"))
    print_table(summary)
    print("Targets on the toolchain image:")
    print()
    print_targets(summary, results)
    print_failures(rows)


if __name__ == "__main__":
    main()
