"""``hotline keys ...``: fresh keys, rotation and what each key still holds."""

from __future__ import annotations

import secrets

import click
from cryptography.fernet import Fernet
from flask.cli import with_appcontext

from hotline.core.extensions import db, settings
from hotline.core.settings import looks_like_placeholder
from hotline.privacy import keys
from hotline.privacy import primitives as privacy


@click.group("keys")
def keys_group() -> None:
    """The seal key and caller-key secrets (see docs/operations.md, Rotating keys)."""


@keys_group.command("new")
def keys_new() -> None:
    """Print fresh random values for the three secrets (nothing is stored)."""
    click.echo(f"SECRET_KEY={_fresh(lambda: secrets.token_urlsafe(48))}")
    click.echo(f"HOTLINE_SEAL_KEY={_fresh(lambda: Fernet.generate_key().decode())}")
    click.echo(f"HOTLINE_CALLER_KEY_SECRET=v1:{_fresh(lambda: secrets.token_urlsafe(48))}")
    click.echo("To rotate, put a new key or secret in front of the old ones (newest first), "
               "restart, then run hotline keys rotate.")


def _fresh(make) -> str:
    """A random value production accepts: about one token in ten thousand happens to contain
    a word the placeholder check refuses (``todo``, ``xxxx``), so draw again."""
    while looks_like_placeholder(value := make()):
        pass
    return value


@keys_group.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Seal every stored number under the newest seal key and move every caller whose number
    is still held to the newest caller-key version."""
    done = keys.rotate(db.session, settings())
    click.echo(f"resealed\t{done.resealed}")
    click.echo(f"callers re-keyed\t{done.rekeyed_callers}")
    if done.unreadable:
        click.echo(f"unreadable (sealed under a key no longer configured)\t{done.unreadable}")
    _print_status()


@keys_group.command("status")
@with_appcontext
def keys_status() -> None:
    """Rows still under each key: an older key can go when it holds nothing."""
    _print_status()


def _print_status() -> None:
    cfg = settings()
    now = keys.status(db.session, cfg)
    ids = privacy.sealer(cfg).ids
    for n, kid in enumerate(ids):
        role = "newest" if n == 0 else "older"
        click.echo(f"seal key {n + 1} ({kid}, {role})\t{now.sealed.get(kid, 0)} sealed numbers")
    for kid in ("", keys.RETIRED):
        if now.sealed.get(kid):
            name = "before key ids" if not kid else "no configured key"
            click.echo(f"sealed {name}\t{now.sealed[kid]} sealed numbers")
    for n, (version, _) in enumerate(keys.caller_secrets(cfg.CALLER_KEY_SECRET)):
        role = "newest" if n == 0 else "older"
        click.echo(f"caller key {version or 'unversioned'} ({role})\t"
                   f"{now.caller_keys.get(version, 0)} rows")
    if now.caller_keys.get(keys.RETIRED):
        click.echo(f"caller keys of retired versions\t{now.caller_keys[keys.RETIRED]} rows")
