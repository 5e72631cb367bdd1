"""`delegation keygen` and `delegation seal` through click's test runner (cli.md)."""

from __future__ import annotations

import stat

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from flows.cli.key_commands import COMMANDS
from loaders.envelope import SignerKey, key_id, open_sealed, signer_key_id_of


@click.group()
def cli() -> None:
    """Only the key commands: other modules' commands are not under test here."""


for _command in COMMANDS:
    cli.add_command(_command)

FORM = b"PK\x03\x04 pretend this is a workbook"


@pytest.fixture
def runner(monkeypatch):
    # a developer's own key settings must not leak into these runs
    for name in ("DELEGATION_PUBLIC_KEY_FILE", "DELEGATION_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def _ok(runner, *args, env=None):
    result = runner.invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def keys(runner, tmp_path):
    """An intake pair and a submitter pair made by the commands themselves."""
    _ok(runner, "keygen", "--out", str(tmp_path / "keys"))
    _ok(runner, "keygen", "--signing", "--out", str(tmp_path / "keys"))
    return tmp_path / "keys"


def test_keygen_writes_an_intake_pair_with_the_private_key_at_mode_600(runner, tmp_path):
    out = tmp_path / "new" / "keys"
    result = _ok(runner, "keygen", "--out", str(out))
    private = serialization.load_pem_private_key((out / "intake.key").read_bytes(), None)
    assert isinstance(private, X25519PrivateKey)
    assert _mode(out / "intake.key") == 0o600
    assert _mode(out) == 0o700  # a folder it had to create
    public_pem = (out / "intake.pub").read_bytes()
    assert private.public_key().public_bytes_raw() == (serialization.load_pem_public_key(public_pem).public_bytes_raw())
    assert key_id(public_pem) in result.output
    assert "BEGIN" not in result.output  # the key itself is never printed


def test_keygen_signing_writes_a_submitter_pair_and_the_line_for_submitters_csv(runner, tmp_path):
    result = _ok(runner, "keygen", "--signing", "--out", str(tmp_path))
    private = serialization.load_pem_private_key((tmp_path / "submitter.key").read_bytes(), None)
    assert isinstance(private, Ed25519PrivateKey)
    assert _mode(tmp_path / "submitter.key") == 0o600
    assert not (tmp_path / "intake.key").exists()
    b64 = result.output.split("public_key for submitters.csv: ")[1].split()[0]
    assert signer_key_id_of(b64) == signer_key_id_of((tmp_path / "submitter.pub").read_bytes())


@pytest.mark.parametrize("existing", ["intake.key", "intake.pub"])
def test_keygen_refuses_to_replace_an_existing_key_file_without_force(runner, tmp_path, existing):
    (tmp_path / existing).write_bytes(b"old")
    result = runner.invoke(cli, ["keygen", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "--force" in result.output
    assert (tmp_path / existing).read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [existing]  # and half a pair was not written


def test_keygen_with_force_replaces_the_pair_and_still_writes_the_private_key_at_600(runner, tmp_path):
    (tmp_path / "submitter.key").write_bytes(b"old")
    (tmp_path / "submitter.key").chmod(0o644)
    _ok(runner, "keygen", "--signing", "--force", "--out", str(tmp_path))
    assert (tmp_path / "submitter.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _mode(tmp_path / "submitter.key") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submitter.key", "submitter.pub"]


def test_seal_writes_form_sealed_next_to_the_form_by_default_and_it_opens(runner, tmp_path, keys):
    form = tmp_path / "FORM.xlsx"
    form.write_bytes(FORM)
    result = _ok(runner, "seal", str(form), "--public-key", str(keys / "intake.pub"))
    sealed = tmp_path / "FORM.xlsx.sealed"
    opened = open_sealed(sealed.read_bytes(), [(keys / "intake.key").read_bytes()])
    assert opened.plaintext == FORM
    assert opened.signer_key_id is None
    assert str(sealed) in result.output


def test_seal_with_a_signing_key_and_an_output_path_signs_as_the_submitter(runner, tmp_path, keys):
    form = tmp_path / "FORM.xlsx"
    form.write_bytes(FORM)
    out = tmp_path / "out" / "x.sealed"
    out.parent.mkdir()
    _ok(
        runner,
        "seal",
        str(form),
        "--public-key",
        str(keys / "intake.pub"),
        "--signing-key",
        str(keys / "submitter.key"),
        "-o",
        str(out),
    )
    public = (keys / "submitter.pub").read_text()
    signers = {signer_key_id_of(public): SignerKey("S1", public)}
    opened = open_sealed(out.read_bytes(), [(keys / "intake.key").read_bytes()], signers, True)
    assert (opened.plaintext, opened.submitted_by) == (FORM, "S1")


def test_seal_takes_its_keys_from_the_environment(runner, tmp_path, keys):
    form = tmp_path / "FORM.xlsx"
    form.write_bytes(FORM)
    env = {
        "DELEGATION_PUBLIC_KEY_FILE": str(keys / "intake.pub"),
        "DELEGATION_SIGNING_KEY_FILE": str(keys / "submitter.key"),
    }
    _ok(runner, "seal", str(form), env=env)
    public = (keys / "submitter.pub").read_text()
    opened = open_sealed(
        (tmp_path / "FORM.xlsx.sealed").read_bytes(),
        [(keys / "intake.key").read_bytes()],
        {signer_key_id_of(public): SignerKey("S1", public)},
    )
    assert (opened.plaintext, opened.submitted_by) == (FORM, "S1")


@pytest.mark.parametrize(
    ("option", "wrong_file"),
    [
        ("--public-key", "submitter.pub"),
        ("--public-key", "intake.key"),
        ("--signing-key", "intake.key"),
        ("--signing-key", "submitter.pub"),
    ],
)
def test_seal_refuses_a_key_of_the_wrong_kind_and_writes_nothing(runner, tmp_path, keys, option, wrong_file):
    form = tmp_path / "FORM.xlsx"
    form.write_bytes(FORM)
    args = ["seal", str(form), "--public-key", str(keys / "intake.pub"), option, str(keys / wrong_file)]
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert "BEGIN" not in result.output
    assert not (tmp_path / "FORM.xlsx.sealed").exists()


def test_seal_refuses_a_file_that_is_already_sealed(runner, tmp_path, keys):
    form = tmp_path / "FORM.xlsx"
    form.write_bytes(FORM)
    _ok(runner, "seal", str(form), "--public-key", str(keys / "intake.pub"))
    result = runner.invoke(cli, ["seal", str(tmp_path / "FORM.xlsx.sealed"), "--public-key", str(keys / "intake.pub")])
    assert result.exit_code != 0
    assert "already sealed" in result.output


@pytest.mark.parametrize("command", ["keygen", "seal"])
def test_each_command_has_help(runner, command):
    result = _ok(runner, command, "--help")
    assert "Usage:" in result.output
    assert ("--public-key" if command == "seal" else "--signing") in result.output


def test_the_key_commands_are_part_of_the_delegation_command_line():
    from flows.cli import cli as delegation

    assert {"keygen", "seal"} <= set(delegation.commands)
