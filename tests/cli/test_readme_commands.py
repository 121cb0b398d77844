"""Every command README.md and the docs/ pages show in a code block is one the command line accepts, verbatim.

The commands are read out of the pages themselves, so an edit to either side
that breaks a reader's steps fails here. Commands that take minutes (the demo
study, a worker) are parsed only; the desktop app's is run in
tests/gui/test_first_launch.py. Python examples are compiled and their imports
resolved. The README stays short: what the project is, how to start, the three
ways to use it, and links to every docs/ page.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shlex
from pathlib import Path

import pytest

from hybridscale.cli import build_parser, cmd_demo, cmd_gui, cmd_submit
from vocabulary.config import StudyConfig

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Every page whose commands must work: the README and the reference pages it links to.
PAGES = (README, *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def fenced_blocks(language: str, pages: tuple[Path, ...] = PAGES) -> list[str]:
    return [body for page in pages for lang, body in FENCE.findall(page.read_text(encoding="utf-8"))
            if lang == language]


def shell_commands(block: str) -> list[list[str]]:
    """Each command of a shell block as argv: continuation lines joined, ``&&`` chains split, VAR=value and ``> FILE`` dropped."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for part in line.split("&&"):
            argv = shlex.split(part.split(" > ")[0])  # a redirection is the shell's, not the command's
            while argv and ASSIGNMENT.match(argv[0]):
                argv = argv[1:]
            if argv:
                commands.append(argv)
    return commands


def readme_commands(pages: tuple[Path, ...] = PAGES) -> list[list[str]]:
    """The arguments of every ``hybridscale`` (or ``.venv/bin/hybridscale``) command in the pages' shell blocks."""
    return [argv[1:] for block in fenced_blocks("bash", pages) for argv in shell_commands(block)
            if Path(argv[0]).name == "hybridscale"]


def readme_command(name: str) -> list[str]:
    """The README's first command with ``name`` among its arguments (the Quick start's, for demo and gui)."""
    return next(argv for argv in readme_commands((README,)) if name in argv)


def test_the_readme_shows_the_first_steps_and_the_cluster_command():
    commands = readme_commands((README,))
    assert ["demo"] in commands
    assert ["gui", "--db", "hybridscale-demo/hybridscale.db"] in commands
    assert any(argv[:1] == ["--db"] and "submit" in argv for argv in commands)


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_every_readme_command_parses_verbatim(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.handler)


def test_the_gui_command_opens_the_database_the_demo_command_writes():
    demo = build_parser().parse_args(readme_command("demo"))
    gui = build_parser().parse_args(readme_command("gui"))
    assert (demo.handler, gui.handler) == (cmd_demo, cmd_gui)
    assert Path(gui.db) == Path(demo.out) / "hybridscale.db"  # where hybridscale.demo.run_study_report writes it
    # Every page's gui command opens a database some demo command of the pages writes.
    parser = build_parser()
    parsed = [parser.parse_args(argv) for argv in readme_commands()]
    written = {Path(args.out) / "hybridscale.db" for args in parsed if args.handler == cmd_demo}
    assert {Path(args.db) for args in parsed if args.handler == cmd_gui} <= written


def test_the_slurm_command_takes_the_database_before_the_command():
    args = build_parser().parse_args(readme_command("--slurm"))
    assert args.handler == cmd_submit and args.slurm
    assert args.db == "postgresql+psycopg://user@host/hybridscale" and args.task_workdir == "$SLURM_TMPDIR/hs"


@pytest.mark.parametrize("command", ["gui", "status", "export --csv out.csv", "worker --once", "submit s.json",
                                     "cancel abc", "retry abc", "demo", "inspect-batches s.json",
                                     "metrics --qrels q --run r"])
def test_db_is_accepted_before_and_after_every_command(command):
    parser = build_parser()
    before = parser.parse_args(["--db", "first.db", *command.split()])
    after = parser.parse_args([*command.split(), "--db", "second.db"])
    both = parser.parse_args(["--db", "first.db", *command.split(), "--db", "second.db"])
    neither = parser.parse_args(command.split())
    assert (before.db, after.db, both.db) == ("first.db", "second.db", "second.db")
    assert neither.db == parser.get_default("db")


def test_the_readme_study_file_is_a_valid_study():
    (block,) = fenced_blocks("json")
    study = StudyConfig.from_dict(json.loads(block)).validate()
    assert study.template.batch_size == 100 and len(study.expand()) == 1 + 3 * 3 * 3


@pytest.mark.parametrize("block", fenced_blocks("python"), ids=lambda block: block.splitlines()[0][:40])
def test_every_python_example_compiles_and_its_imports_resolve(block):
    tree = ast.parse(block)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)


def test_the_readme_is_short_and_links_every_docs_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 300
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in text, f"README does not link docs/{page.name}"


def test_every_relative_link_of_every_page_exists():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links {target}, which does not exist"
