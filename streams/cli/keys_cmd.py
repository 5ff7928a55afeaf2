"""``gravitas keygen`` and ``gravitas public-key``: the Ed25519 keys of a federation."""

from __future__ import annotations

import typer

from gravitas.agents.signing import NodeIdentity, generate_seed
from gravitas.schemas.settings import load_settings
from gravitas.streams.cli.common import DataOpt, NodeIdOpt, console, out, settings_from


def keygen() -> None:
    """Print a new signing key (for GRAVITAS_SIGNING_KEY) and its public key (for the
    peers' GRAVITAS_PEERS). Keep the first line secret.

    Example: gravitas keygen
    """
    seed = generate_seed()
    identity = NodeIdentity.load(load_settings(signing_key=seed))
    out.print(f"GRAVITAS_SIGNING_KEY={seed}", highlight=False)
    out.print(f"public key: {identity.public_key}", highlight=False)


def public_key(data: DataOpt = None, node_id: NodeIdOpt = None) -> None:
    """Print this node's public key (the key file in the data dir is created if missing);
    the other nodes put it into GRAVITAS_PEERS.

    Example: gravitas public-key --data ./node-a
    """
    settings = settings_from(data=data, node_id=node_id)
    identity = NodeIdentity.load(settings)
    out.print(identity.public_key, highlight=False)
    console.print(
        f'peer entry for the other nodes: {{"{settings.node_id}": {{"public_key": '
        f'"{identity.public_key}", "api_url": "{settings.edge_url}"}}}}',
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the commands to the app."""
    app.command()(keygen)
    app.command("public-key")(public_key)
