"""Runs a command and writes its peak resident memory, in KiB, to a file.

Usage: max_rss.py OUTPUT_FILE PROGRAM [ARG ...]

The command inherits standard input, output and error, and the wrapper exits with its exit
code. The figure is ru_maxrss of the waited-for children, which is the command alone.
"""

import os
import resource
import signal
import subprocess
import sys


def main() -> int:
    output_file, command = sys.argv[1], sys.argv[2:]
    code = subprocess.run(command, check=False).returncode
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(output_file, "w", encoding="ascii") as output:
        output.write(f"{peak}\n")
    if code < 0:
        # Die by the same signal, so that the caller sees the command was killed.
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main())
