"""Command line: ``streamkit registry serve`` and ``streamkit schemas ...``.

Two click groups, ``registry`` and ``schemas``, that the main ``streamkit`` command
attaches when ``streamkit.avro`` is usable (fastavro installed); ``main`` holds the two
on their own (for tests and scripts). The registry is ``streamkit.avro.registry`` (or a
REST registry through ``streamkit.avro.client``) and its HTTP server
``streamkit.web.registry``; both are imported only when a command runs.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from streamkit.cli.serving import serve_until_stopped
from streamkit.cli.shared_options import spread_group_options
from streamkit.errors import IncompatibleSchema, SchemaRegistryError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from streamkit.avro.client import RegistryClient
    from streamkit.avro.registry import SchemaRegistry
    from streamkit.avro.schema import Schema

__all__ = ["registry", "schemas", "main"]

_BROKER_HELP = ("broker whose _schemas topic holds the registry (default: "
                "$STREAMKIT_BROKER or log://)")


def _default_broker() -> str:
    """``$STREAMKIT_BROKER``, else ``log://``: the App's default."""
    return os.environ.get("STREAMKIT_BROKER", "log://")


def _default_datadir() -> str:
    """``$STREAMKIT_DATADIR``, else ``stores``: the App's default."""
    return os.environ.get("STREAMKIT_DATADIR", "stores")


@click.group()
def registry() -> None:
    """The built-in Schema Registry."""


@registry.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8081, show_default=True, type=int, help="port to listen on")
@click.option("--broker", default=None, help=_BROKER_HELP)
@click.option("--datadir", default=None, help="data root of log:// (default: stores)")
@click.option("--compatibility", default="BACKWARD", show_default=True,
              help="global compatibility level until one is set with PUT /config")
def serve(host: str, port: int, broker: str | None, datadir: str | None,
          compatibility: str) -> None:
    """Serve the Schema Registry REST API (Confluent-compatible subset)."""
    from streamkit.avro.registry import SchemaRegistry
    from streamkit.transport import connect
    try:
        from streamkit.web.registry import serve_registry
    except ImportError:
        from streamkit.cli.extras import missing_extra
        raise click.ClickException(missing_extra("web", "registry serve")) from None

    url = broker or _default_broker()
    reg = SchemaRegistry(connect(url, datadir=datadir or _default_datadir()),
                         default_compatibility=compatibility, owns_broker=True)

    async def start(tg: TaskGroup) -> None:
        bound = await tg.start(serve_registry, reg, host, port)
        click.echo(f"schema registry on http://{host}:{bound} (broker {url})", err=True)

    serve_until_stopped(start, reg.close)


@click.group()
@click.option("--registry", "registry_url", default=None,
              help="a registry's REST URL (http://host:8081) instead of the broker; "
                   "default $STREAMKIT_SCHEMA_REGISTRY_URL")
@click.option("--broker", default=None, help=_BROKER_HELP)
@click.option("--datadir", default=None, help="data root of log:// (default: stores)")
@click.pass_context
def schemas(ctx: click.Context, registry_url: str | None, broker: str | None,
            datadir: str | None) -> None:
    """List, show, register and check Avro schemas of the Schema Registry.

    --registry, --broker and --datadir may also follow the subcommand; given in both
    places, the one after the subcommand wins."""
    # stored as given: a copy of an option after the subcommand overwrites its value
    # here (streamkit.cli.shared_options); _open reads them
    ctx.ensure_object(dict).update(registry_url=registry_url, broker=broker,
                                   datadir=datadir)


def _open(ctx: click.Context) -> SchemaRegistry | RegistryClient:
    """The registry the ``schemas`` options name (explicit options first, then the
    environment), closed when the command ends."""
    from streamkit.avro.registry import open_registry
    obj = ctx.obj
    url = (obj["registry_url"] or obj["broker"]
           or os.environ.get("STREAMKIT_SCHEMA_REGISTRY_URL") or _default_broker())
    reg = open_registry(url, datadir=obj["datadir"] or _default_datadir())
    ctx.call_on_close(reg.close)
    return reg


def _fail(exc: SchemaRegistryError) -> None:
    """Print ``exc`` (an incompatibility with one reason a line) and exit 1."""
    messages = getattr(exc, "messages", [])
    # an IncompatibleSchema message ends with its reasons joined: list them instead
    head = exc.message.split(": " + messages[0])[0] if messages else exc.message
    click.echo(f"error {exc.error_code}: {head}", err=True)
    for msg in messages:
        click.echo(f"  - {msg}", err=True)
    sys.exit(1)


def _read_schema(path: str) -> Schema:
    """The schema in the file at ``path``, or on stdin for ``-``."""
    from streamkit.avro.schema import Schema
    return Schema.parse(path if path != "-" else sys.stdin.read())


@schemas.command("list")
@click.option("--deleted", is_flag=True, help="include soft-deleted subjects")
@click.pass_context
def list_(ctx: click.Context, deleted: bool) -> None:
    """Subjects, with their versions and latest schema id."""
    reg = _open(ctx)
    try:
        for subject in reg.subjects(deleted=deleted):
            versions = reg.versions(subject, deleted=deleted)
            latest = reg.get_version(subject, "latest", deleted=deleted)
            click.echo(f"{subject}\tversions {','.join(map(str, versions))}\t"
                       f"latest id {latest.id}")
    except SchemaRegistryError as exc:
        _fail(exc)


@schemas.command("show")
@click.argument("subject")
@click.option("--version", default="latest", show_default=True)
@click.pass_context
def show(ctx: click.Context, subject: str, version: str) -> None:
    """One version of a subject: id, version and the schema."""
    reg = _open(ctx)
    try:
        found = reg.get_version(subject, version)
        level = reg.compatibility(subject)
    except SchemaRegistryError as exc:
        _fail(exc)
        return
    click.echo(f"subject {found.subject}  version {found.version}  id {found.id}  "
               f"compatibility {level}")
    click.echo(found.schema.to_json(indent=2))


@schemas.command("register")
@click.argument("subject")
@click.argument("file")
@click.pass_context
def register(ctx: click.Context, subject: str, file: str) -> None:
    """Register the schema in FILE (an .avsc, or - for stdin) under SUBJECT."""
    reg = _open(ctx)
    try:
        done = reg.register(subject, _read_schema(file))
    except IncompatibleSchema as exc:
        _fail(exc)
        return
    except SchemaRegistryError as exc:
        _fail(exc)
        return
    click.echo(f"{subject}: version {done.version}, id {done.id}")


@schemas.command("check")
@click.argument("subject")
@click.argument("file")
@click.option("--version", default=None,
              help="check against this version only (default: what the level requires)")
@click.pass_context
def check(ctx: click.Context, subject: str, file: str, version: str | None) -> None:
    """Whether FILE's schema may be registered under SUBJECT. Exit 1 if not."""
    reg = _open(ctx)
    try:
        messages = reg.check(subject, _read_schema(file), version)
        level = reg.compatibility(subject)
    except SchemaRegistryError as exc:
        _fail(exc)
        return
    if messages:
        click.echo(f"incompatible with {subject} ({level}):")
        for msg in messages:
            click.echo(f"  - {msg}")
        sys.exit(1)
    click.echo(f"compatible with {subject} ({level})")


@schemas.command("compatibility")
@click.argument("subject", required=False)
@click.option("--set", "level", default=None, help="set the level (NONE, BACKWARD, ...)")
@click.pass_context
def compatibility(ctx: click.Context, subject: str | None, level: str | None) -> None:
    """Show or set the compatibility level, global or of SUBJECT."""
    reg = _open(ctx)
    try:
        if level:
            reg.set_compatibility(level, subject)
        click.echo(reg.compatibility(subject))
    except SchemaRegistryError as exc:
        _fail(exc)


@schemas.command("delete")
@click.argument("subject")
@click.option("--version", default=None, help="delete one version (default: the subject)")
@click.option("--permanent", is_flag=True, help="erase a soft-deleted subject/version")
@click.pass_context
def delete(ctx: click.Context, subject: str, version: str | None, permanent: bool) -> None:
    """Soft-delete a subject or one version (--permanent erases a soft-deleted one)."""
    reg = _open(ctx)
    try:
        if version is None:
            done = reg.delete_subject(subject, permanent=permanent)
        else:
            done = [reg.delete_version(subject, version, permanent=permanent)]
    except SchemaRegistryError as exc:
        _fail(exc)
        return
    kind = "permanently deleted" if permanent else "soft-deleted"
    click.echo(f"{subject}: {kind} versions {','.join(map(str, done))}")


@click.group()
def main() -> None:
    """streamkit's Schema Registry commands (also under the main ``streamkit`` command)."""


main.add_command(registry)
main.add_command(schemas)
spread_group_options(main)
