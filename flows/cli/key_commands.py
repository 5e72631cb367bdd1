"""Commands: `keygen` (intake and submitter key pairs) and `seal` (encrypt a form for the inbox)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

# loaders.envelope (and cryptography) are imported inside the commands: `--help` stays fast.


@click.command("keygen")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the pair to (created, mode 700, if missing).",
)
@click.option(
    "--signing",
    is_flag=True,
    help="A submitter's Ed25519 signing pair (submitter.key, submitter.pub) "
    "instead of the intake's X25519 pair (intake.key, intake.pub).",
)
@click.option("--force", is_flag=True, help="Replace key files that already exist.")
def keygen(out_dir: Path, signing: bool, force: bool) -> None:
    """Write a new key pair: the intake's (default) or a submitter's signing pair (--signing).

    The private key is written with mode 600. Existing key files are never replaced without --force.
    """
    from loaders import envelope

    if signing:
        private_pem, public_pem = envelope.generate_signing_keypair()
        names = ("submitter.key", "submitter.pub")
    else:
        private_pem, public_pem = envelope.generate_intake_keypair()
        names = ("intake.key", "intake.pub")
    private_path, public_path = (out_dir / name for name in names)

    # Check both first: refusing after writing one of them would leave a mismatched pair.
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        raise click.ClickException(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''};"
            " use --force to replace"
            " (a replaced intake key can no longer open forms sealed to the old one)"
        )
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_atomically(private_path, private_pem, 0o600)
    _write_atomically(public_path, public_pem, 0o644)

    kid = envelope.key_id(public_pem)
    click.echo(f"wrote {private_path} (private, mode 600: keep it secret)")
    click.echo(f"wrote {public_path} (public)")
    click.echo(f"key id: {kid}")
    if signing:
        click.echo(f"public_key for submitters.csv: {envelope.public_key_base64(public_pem)}")
    else:
        click.echo(
            "give intake.pub to the submitters; point DELEGATION_PRIVATE_KEY_FILE (or --private-key) at intake.key"
        )


@click.command("seal")
@click.argument("form", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    required=True,
    envvar="DELEGATION_PUBLIC_KEY_FILE",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The intake's public key (intake.pub).",
)
@click.option(
    "--signing-key",
    "signing_key",
    envvar="DELEGATION_SIGNING_KEY_FILE",
    show_envvar=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign as this submitter (submitter.key); unsigned when omitted.",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the sealed file [default: FORM.sealed].",
)
def seal(form: Path, public_key: Path, signing_key: Path | None, output: Path | None) -> None:
    """Encrypt FORM for the inbox, signed by the submitter when --signing-key is given."""
    from loaders import envelope

    plaintext = form.read_bytes()
    if plaintext.startswith(envelope.MAGIC):
        raise click.ClickException(f"{form} is already sealed")
    public_pem = public_key.read_bytes()
    signing_pem = signing_key.read_bytes() if signing_key else None
    try:
        sealed = envelope.seal(plaintext, public_pem, signing_pem)
    except ValueError as exc:
        # seal()'s messages say which key is of the wrong kind; they never quote key bytes
        raise click.ClickException(f"cannot seal {form}: {exc}") from None
    output = output or form.with_name(form.name + ".sealed")
    _write_atomically(output, sealed, 0o644)

    signed = f", signed by key id {envelope.key_id(signing_pem)}" if signing_pem else ", unsigned"
    click.echo(
        f"sealed {form} -> {output} ({len(sealed)} bytes, for intake key id {envelope.key_id(public_pem)}{signed})"
    )


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write via a temp file in the same folder: never a half-written file or a moment at 644."""
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp makes it 600; the umask does not apply to fchmod
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


COMMANDS: list[click.Command] = [keygen, seal]
