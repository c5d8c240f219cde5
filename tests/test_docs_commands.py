"""The documentation's commands run as written: README.md, then docs/*.md, in reading order.

The slow test is the README's promise that every command it shows works after the quick start.
It runs the quick start's demo once into a temporary folder (``featurelake demo --workdir
demo-run``, as the README's first command does after installing), then every fenced ``bash``
and ``python`` block of README.md and of the pages in ``DOCS_ORDER``, one after the other, in
the folder that holds ``demo-run/`` - the reader's working directory - and checks each block's
exit code. Conventions for whoever edits the docs:

- A block whose first line is ``# not run by the docs test: REASON`` is skipped: it needs what
  one machine does not have here (a cluster, an Azure subscription, a server left running).
  Say why in REASON. Every other bash and python block must run.
- A bash block runs with ``bash -e -o pipefail`` and must exit 0, unless its first line is
  ``# expected exit code: N ...``: then it must exit N.
- A python block runs in a fresh ``python3`` process and must exit 0.
- Blocks run in the order of ``DOCS_ORDER``, so a page may build on the state the pages before
  it left (the second model version of model-lifecycle.md is scored in batch-inference.md).
- The two install commands of the quick start are special: the first (install, then the demo)
  is run without its ``pip install`` part (the package under test is already importable), the
  second is the test command itself (``.ci/run`` runs it) and is not run. Both must stay in the
  README exactly as ``QUICK_START`` and ``TEST_COMMAND`` spell them.

``featurelake`` and ``python3`` in the blocks are this interpreter with this checkout first on
``PYTHONPATH``, so the code under test is the one that runs. The fast tests below check what
needs no Spark: every page is in ``DOCS_ORDER`` and linked from the README, every relative
link and anchor resolves, every ``yaml`` block is a configuration the loader accepts, and every
module or function of featurelake the docs name in backticks exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from featurestore.core.config import load_config

ROOT = Path(__file__).resolve().parents[1]
DOCS_ORDER = [
    "README.md",
    "docs/configuration.md",
    "docs/feature-tables.md",
    "docs/model-lifecycle.md",
    "docs/batch-inference.md",
    "docs/monitoring.md",
    "docs/online-features.md",
    "docs/serving.md",
    "docs/report.md",
    "docs/cluster.md",
    "docs/azure-data-factory.md",
    "docs/guarantees.md",
    "docs/exit-codes.md",
    "docs/python-client.md",
    "docs/model-governance.md",  # last: its requests and approvals change the registry the pages above use
]
# Pages whose blocks another test runs (with checks of what they print), not this one.
RUN_ELSEWHERE = {"docs/python-client.md": "tests/test_docs_python_client.py"}
QUICK_START = "python3 -m pip install -e . && featurelake demo --workdir demo-run"
TEST_COMMAND = "python3 -m pip install -e '.[test]' && python3 -m pytest -n 2 --dist loadfile --no-loadscope-reorder"
NOT_RUN = re.compile(r"#\s*not run by the docs test:\s*\S")
EXPECTED_CODE = re.compile(r"#\s*expected exit code:\s*(\d+)")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*$")
BLOCK_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int      # line number of the opening fence
    lang: str
    code: str

    @property
    def first_line(self) -> str:
        return self.code.strip().splitlines()[0] if self.code.strip() else ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(page: str) -> list[Block]:
    """Return the fenced blocks of ``page`` (a path relative to the repository), indented ones too."""
    blocks: list[Block] = []
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening or not opening["lang"]:
            index += 1
            continue
        indent, body = opening["indent"], []
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            line = lines[end]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            end += 1
        blocks.append(Block(page, index + 1, opening["lang"], "\n".join(body) + "\n"))
        index = end + 1
    return blocks


def runnable_blocks() -> list[Block]:
    """The bash and python blocks the test runs, in reading order (the quick start's are handled apart)."""
    blocks = []
    for page in DOCS_ORDER:
        if page in RUN_ELSEWHERE:
            continue
        for block in fenced_blocks(page):
            if block.lang not in ("bash", "python") or NOT_RUN.match(block.first_line):
                continue
            if block.code.strip() in (QUICK_START, TEST_COMMAND):
                continue
            blocks.append(block)
    return blocks


def shim_bin(folder: Path) -> Path:
    """A folder of ``featurelake`` and ``python3`` launchers running this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    launchers = {"featurelake": f'exec "{sys.executable}" -m jobs.cli "$@"\n',
                 "python3": f'exec "{sys.executable}" "$@"\n'}
    for name, body in launchers.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(0o755)
    return folder


def reader_environment(bin_dir: Path) -> dict[str, str]:
    """The environment of a reader who just installed featurelake: no featurelake or MLflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURELAKE_", "MLFLOW_"))
           or k == "FEATURELAKE_CACHE_DIR"}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYSPARK_PYTHON"] = env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return env


def run_block(block: Block, workdir: Path, env: dict[str, str], log: Path) -> tuple[int, str]:
    """Run ``block`` in ``workdir`` as the reader would (bash with errexit, or a fresh python3).

    Returns the exit code and the last lines of its output, which goes to ``log`` as it runs.
    """
    command = (["bash", "-e", "-o", "pipefail", "-c", block.code] if block.lang == "bash"
               else [sys.executable, "-c", block.code])
    with log.open("w", encoding="utf-8") as out:
        out.write(f"# {block.where} ({block.lang})\n{block.code}# ---- output\n")
        out.flush()
        code = subprocess.run(command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=BLOCK_TIMEOUT_SECONDS).returncode
    tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
    return code, tail


def failure(block: Block, code: int, expected: int, tail: str, log: Path) -> str:
    return (f"{block.where}: the {block.lang} block exited {code}, expected {expected} (whole output: {log})\n"
            f"--- block ---\n{block.code}--- last lines of its output ---\n{tail}")


@pytest.mark.slow
def test_every_documented_command_runs_in_order_after_the_quick_start(tmp_path: Path) -> None:
    env = reader_environment(shim_bin(tmp_path / "bin"))
    workdir, logs = tmp_path / "reader", tmp_path / "logs"
    workdir.mkdir()
    logs.mkdir()
    quick_start = next(b for b in fenced_blocks("README.md") if b.code.strip() == QUICK_START)
    demo = QUICK_START.split("&&", 1)[1].strip()  # the install part is done: the package is importable
    steps = [Block(quick_start.page, quick_start.line, "bash", demo + "\n")] + runnable_blocks()
    assert len(steps) > 1, "no runnable blocks found in the docs"
    for number, block in enumerate(steps):
        expected = EXPECTED_CODE.match(block.first_line)
        wanted = int(expected.group(1)) if expected else 0
        log = logs / f"{number:02d}-{Path(block.page).stem}-{block.line}.log"
        started = time.monotonic()
        code, tail = run_block(block, workdir, env, log)
        print(f"{time.monotonic() - started:6.1f} s  {block.where} ({block.lang})", flush=True)
        assert code == wanted, failure(block, code, wanted, tail, log)
        if number == 0:
            assert (workdir / "demo-run" / "featurelake.yaml").is_file()


def test_the_quick_start_commands_are_in_the_readme_as_written() -> None:
    readme_blocks = [b.code.strip() for b in fenced_blocks("README.md") if b.lang == "bash"]
    assert readme_blocks[:2] == [QUICK_START, TEST_COMMAND]
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_page_of_docs_is_in_the_reading_order_and_linked_from_the_readme() -> None:
    pages = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    assert sorted(DOCS_ORDER[1:]) == pages
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [p for p in pages if f"]({p})" not in readme] == []


def test_skipped_blocks_say_why_and_expected_codes_are_numbers() -> None:
    for page in DOCS_ORDER:
        for block in fenced_blocks(page):
            first = block.first_line
            if "not run by the docs test" in first:
                assert NOT_RUN.match(first), f"{block.where}: write '# not run by the docs test: REASON'"
            if "expected exit code" in first:
                assert EXPECTED_CODE.match(first), f"{block.where}: write '# expected exit code: N'"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, flags=re.M)}


def test_relative_links_and_anchors_resolve() -> None:
    broken = []
    for page in DOCS_ORDER + ["benchmarks/README.md"]:
        path = ROOT / page
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{page}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page}: {target} (no such heading)")
    assert broken == []


def test_every_yaml_block_is_a_configuration_the_loader_accepts(tmp_path: Path) -> None:
    for page in DOCS_ORDER:
        for block in fenced_blocks(page):
            if block.lang != "yaml":
                continue
            path = tmp_path / "featurelake.yaml"
            path.write_text(block.code, encoding="utf-8")
            try:
                load_config(path, env={})
            except Exception as exc:  # the message names the key at fault
                pytest.fail(f"{block.where}: the yaml block is refused by the configuration loader: {exc}")


def test_every_module_and_function_the_docs_name_exists() -> None:
    """A dotted name of featurelake's packages in backticks (``inference.batch.run_batch_inference``)
    imports: renames and moves of modules cannot leave the docs pointing at nothing."""
    import importlib

    def resolves(name: str) -> bool:
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                found = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                if not hasattr(found, attribute):
                    return False
                found = getattr(found, attribute)
            return True
        return False

    missing = []
    for page in DOCS_ORDER:
        text = (ROOT / page).read_text(encoding="utf-8")
        for name in re.findall(r"`((?:featurestore|inference|jobs)(?:\.[A-Za-z_]\w*)+)", text):
            if name.split(".")[-1].isupper():  # a placeholder such as jobs.JOB
                continue
            if not resolves(name):
                missing.append(f"{page}: {name}")
    assert missing == []
