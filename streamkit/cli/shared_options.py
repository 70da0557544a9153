"""Options of a command group that may also follow the subcommand.

``streamkit topics --broker URL create demo`` and ``streamkit topics create demo
--broker URL`` mean the same: :func:`spread_group_options` gives every subcommand a
copy of its group's options (and, down the tree, of the groups above it: ``--debug``).
A copy given on the command line overwrites the value the group stored in the context
object, so when both are given the one after the subcommand wins.

The convention this relies on: a group stores each of its options in the shared
context object (``ctx.ensure_object(dict)``) under the option's name, and its
subcommands read them from there (``@click.pass_obj``).
"""
from __future__ import annotations

import copy
from typing import Any

import click
from click.core import ParameterSource


def spread_group_options(group: click.Group) -> None:
    """Copy the options of ``group`` onto each of its subcommands, recursively.

    A subcommand that has an option of the same name or flag keeps its own. Eager
    options (``--help``, ``--version``) are not copied."""
    shared = [p for p in group.params if isinstance(p, click.Option) and not p.is_eager
              and p.name]
    for command in group.commands.values():
        names = {p.name for p in command.params}
        flags = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        for option in shared:
            if option.name in names or flags & {*option.opts, *option.secondary_opts}:
                continue
            command.params.append(_copy(option))
        if isinstance(command, click.Group):
            spread_group_options(command)


def _copy(option: click.Option) -> click.Option:
    """``option`` for a subcommand: no default and no environment variable (the group
    applies those), not passed to the callback, stored in the context object when given
    on the command line."""
    twin = copy.copy(option)
    twin.default = None
    twin.envvar = None
    twin.show_default = False
    twin.show_envvar = False
    twin.required = False
    twin.expose_value = False
    twin.__class__ = _shared_class(type(option))
    return twin


_CLASSES: dict[type[click.Option], type[click.Option]] = {}


def _shared_class(cls: type[click.Option]) -> type[click.Option]:
    """``cls`` whose parsed value goes into the context object when it came from the
    command line (click knows where a value came from only once it is parsed, after
    any callback ran)."""
    shared = _CLASSES.get(cls)
    if shared is None:
        def handle_parse_result(self: click.Option, ctx: click.Context,
                                opts: Any, args: list[str]) -> tuple[Any, list[str]]:
            value, rest = cls.handle_parse_result(self, ctx, opts, args)
            if (self.name and ctx.get_parameter_source(self.name)
                    is ParameterSource.COMMANDLINE):
                ctx.ensure_object(dict)[self.name] = value
            return value, rest
        shared = _CLASSES[cls] = type(f"Shared{cls.__name__}", (cls,),
                                      {"handle_parse_result": handle_parse_result})
    return shared
