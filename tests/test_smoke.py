"""Every entry point a scheduler or a person uses can at least be loaded and asked for help."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flows.cli import cli

REPO = Path(__file__).resolve().parent.parent


def _deployments():
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_every_prefect_yaml_entrypoint_imports_a_flow(deployment):
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    flow = getattr(module, name)
    assert flow.name == deployment["name"]


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("words", list(_commands(cli)), ids=" ".join)
def test_every_command_answers_help(words):
    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    "command",
    ["template", "keygen", "seal", "check", "directory", "run", "apply", "audit", "grants", "demo", "revoke", "db"],
)
def test_the_contracts_commands_exist(command):
    assert command in cli.commands
