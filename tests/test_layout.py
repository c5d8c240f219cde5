"""The package layout: three import names, layers that run one way, no clash with a user's folders."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from importlib.metadata import distribution
from pathlib import Path

import pytest
REPO_ROOT = Path(__file__).resolve().parents[1]
CARD_PACKAGES = {"featurestore", "inference", "jobs"}  # the design card's import names
USER_PACKAGES = ("monitoring", "report", "demo", "modeling", "training")


def test_the_import_contract_is_kept():
    """Both contracts in setup.cfg (jobs > inference > featurestore; features > runtime > core) hold."""
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config", "setup.cfg",
                             "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_installed_distribution_has_the_card_top_level_names():
    top_level = distribution("featurelake").read_text("top_level.txt")
    if top_level is not None:  # absent from editable installs; the fresh-venv test below checks a real one
        assert set(top_level.split()) == CARD_PACKAGES


@pytest.mark.slow
def test_a_user_project_with_its_own_monitoring_and_report_packages_imports_both_sides(tmp_path):
    """pip install into a fresh venv beside a project that has its own monitoring/, report/ ... packages."""
    project = tmp_path / "user_project"
    for name in USER_PACKAGES:
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"OWNER = 'user:{name}'\n", encoding="utf-8")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--quiet", str(REPO_ROOT)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    probe = ("import importlib, importlib.metadata as md, json, sys; "
             f"user = {{n: importlib.import_module(n).OWNER for n in {USER_PACKAGES!r}}}; "
             "import featurestore, inference, jobs.cli, inference.monitoring.loop, inference.report.render; "
             "print(json.dumps({'user': user, 'top_level': md.distribution('featurelake').read_text('top_level.txt'), "
             "'featurestore': featurestore.__file__}))")
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(python), "-c", probe], cwd=project, capture_output=True, text=True,
                            timeout=300, env=clean_env)
    assert result.returncode == 0, result.stderr
    import json

    seen = json.loads(result.stdout)
    assert seen["user"] == {name: f"user:{name}" for name in USER_PACKAGES}
    assert set(seen["top_level"].split()) == CARD_PACKAGES
    assert seen["featurestore"].startswith(str(env_dir))
