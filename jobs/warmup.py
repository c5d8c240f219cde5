"""Write the JVM class-data archive that makes later local jobs start faster.

Runs a training run, one tiny table built twice (created, then upserted) in a temporary folder,
in a Spark session whose JVM archives the classes it loaded when it exits; the archive goes to
featurelake's cache folder (``$FEATURELAKE_CACHE_DIR``, else ``~/.cache/featurelake``), where
every later local session finds it. ``featurelake demo`` writes one too when there is none;
run this once per machine (or image) to write it alone, or again to replace it::

    featurelake warmup
"""

from __future__ import annotations

import argparse

from featurestore.archive_session import create_archive
from jobs.common import exit_process, job_parser, run_job_without_config


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    return job_parser("featurelake warmup", "Write the JVM class-data archive (one tiny training build) "
                                            "so later local jobs start faster.", with_config=False)


def _run(args: argparse.Namespace) -> None:
    archive = create_archive()
    print(f"class-data archive written: {archive} ({archive.stat().st_size / 2**20:.0f} MB); "
          "later local Spark jobs on this machine map it and start faster")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job_without_config(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
