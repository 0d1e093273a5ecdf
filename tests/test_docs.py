"""The README's promises: its two commands, the CI command, and the generated config table."""

from __future__ import annotations

import re

from conftest import REPO

from discovery.frontends.config_reference import BEGIN, END, markdown


def _commands():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_readme_begins_with_install_and_test_commands():
    text = (REPO / "README.md").read_text()
    first, second = _commands()[:2]
    assert text.index(first) < text.index("## ")
    assert "pip install torch==2.13.0" in first
    assert first.index("torch==2.13.0") < first.index("-e '.[dev]'")
    assert "discovery run campaigns/quickstart.yaml" in first
    assert "pytest" in second and "\n" not in second


def test_ci_runs_the_readme_test_command():
    second = _commands()[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert second in ci
    assert "torch==2.13.0" in ci
    assert '"$rc" -eq 5' in ci  # no tests collected is a failure


def test_config_reference_in_readme_is_current():
    text = (REPO / "README.md").read_text()
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == markdown(), "run `discovery config-reference` and paste it into README.md"


def test_torch_pin_admits_the_cpu_wheel():
    pyproject = (REPO / "pyproject.toml").read_text()
    spec = re.search(r'"torch([^"]*)"', pyproject).group(1)
    from packaging.specifiers import SpecifierSet

    assert "2.13.0" in SpecifierSet(spec)


def test_readme_examples_use_the_directory_the_quickstart_writes():
    """The 'Using it' commands that read a campaign name the directory the first command's
    quickstart writes (they once said runs/qs while the quickstart wrote runs/quickstart)."""
    first = _commands()[0]
    quickstart_dir = re.search(r"discovery run campaigns/quickstart.yaml --dir (\S+)", first)[1]
    text = (REPO / "README.md").read_text()
    usage = text[text.index("## Using it") :]
    block = re.search(r"```bash\n(.*?)\n```", usage, flags=re.S)[1]
    reading = r"^discovery (?:status|ui|review \w+|export|serve|tune \S+|run \S+) .*"
    lines = re.findall(reading, block, flags=re.M)
    assert len(lines) >= 8
    used = {d for line in lines for d in re.findall(r"\b(runs/[\w.-]+)", line)}
    assert used == {quickstart_dir}, f"README examples name {used - {quickstart_dir}}"
