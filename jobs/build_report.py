"""Write the static HTML report of the workspace: feature tables, registered models, monitoring.

    featurelake report --out ./report-site            # then open report-site/index.html
    featurelake report --out ./report-site --serve    # and serve it on http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import functools
import http.server
import logging
from pathlib import Path

from featurestore.core.config import Config
from jobs.common import exit_process, job_parser, metadata_reader, run_job
from inference.report.render import generate_report

logger = logging.getLogger("featurelake.report")


def build_parser() -> argparse.ArgumentParser:
    """Return the job's argument parser."""
    parser = job_parser("featurelake report", "Write the static HTML report (no server needed; opens from disk).")
    parser.add_argument("--out", required=True, help="folder that receives the HTML pages")
    parser.add_argument("--serve", action="store_true", help="serve the folder on a local HTTP server afterwards")
    parser.add_argument("--port", type=int, default=8000, help="port of --serve (default 8000)")
    return parser


def serve(folder: Path, port: int) -> None:
    """Serve ``folder`` on 127.0.0.1:``port`` until interrupted."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving {folder} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def _run(args: argparse.Namespace, config: Config) -> None:
    pages = generate_report(metadata_reader(config), config, args.out)
    print(f"report written: {pages[0].resolve()} ({len(pages)} pages)")
    if args.serve:
        serve(Path(args.out).resolve(), args.port)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run_job(_run, build_parser().parse_args(argv))


if __name__ == "__main__":
    exit_process(main())
