#!/usr/bin/env python3
"""Group a flat perf profile of the scanner into kinds of work.

Usage: profile_categories.py PERF_REPORT

PERF_REPORT is the output of `perf report --stdio --no-children --sort dso,symbol` without its
comment lines: one line per symbol, starting with its share of the samples. The first pattern
that matches a line picks its category, so the order of CATEGORIES matters.
"""

import re
import sys

CATEGORIES = [
    # ISA-L's inflate is nasm code: its hot loops show up as nasm local labels (..@N.name)
    # and as the names of its assembly routines.
    ("gzip inflate (ISA-L, CRC-32 included)", re.compile(
        r"isal_|inflate|crc32|decode_huffman|decode_len_dist|decode_literal|setup_dynamic_header"
        r"|setup_static_header|byte_copy|loop_block|\.\.@[0-9]+\.")),
    ("SHA-256, layer walk (sha2 0.10)", re.compile(r"sha2::sha256::(x86::|soft::compress)")),
    ("SHA-256, oci-client (sha2 0.11)", re.compile(r"sha2::sha256::(x86_sha::|soft::unroll)")),
    ("tar headers, layer index and checks", re.compile(
        r"image_compliance_scanner::(layer|filesystem|checks)|memchr|CharSearcher|from_utf8")),
    ("TLS set-up and entropy (aws-lc, rustls)", re.compile(
        r"jent_|aws_lc|rustls|rol64|keccak|xoshiro|uint32rotl")),
    ("kernel: network, memory, scheduling", re.compile(r"\[kernel|\[k\]")),
    ("memcpy, malloc and other libc", re.compile(r"libc\.so|ld-linux")),
    # The scanner's jemalloc: exported symbols carry the _rjem_ prefix, static ones do not.
    ("jemalloc", re.compile(
        r"_rjem_|\[\.\] (arena|bin|eset|edata|emap|extent|hpa|large|pac|sec|tcache|te)_")),
    ("tokio, hyper and the rest", re.compile(r".")),
]

LINE = re.compile(r"^\s*([0-9.]+)%\s+(.*)$")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: profile_categories.py PERF_REPORT")
    totals = {name: 0.0 for name, _ in CATEGORIES}
    with open(sys.argv[1]) as report:
        for line in report:
            match = LINE.match(line)
            if not match:
                continue
            share, rest = float(match.group(1)), match.group(2)
            for name, pattern in CATEGORIES:
                if pattern.search(rest):
                    totals[name] += share
                    break
    print("| kind of work | share of CPU samples |")
    print("|---|---:|")
    for name, _ in CATEGORIES:
        print(f"| {name} | {totals[name]:.1f}% |")


if __name__ == "__main__":
    main()
