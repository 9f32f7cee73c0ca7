"""The one place where the command line turns the library's errors into messages.

Every ``ipw`` command is an :class:`IpwCommand` (groups: :class:`IpwGroup`): an
:class:`~ipw.core.errors.IpwError` raised anywhere below a command becomes one line on stderr,
``Error: <message>``, and exit status 1 (usage errors keep click's status 2). Anything else is a
bug and keeps its traceback. Library code raises ``IpwError`` subclasses and never imports click.
"""

from __future__ import annotations

import click

from ipw.core.errors import IpwError


def _friendly(invoke, ctx: click.Context):
    try:
        return invoke(ctx)
    except IpwError as e:
        raise click.ClickException(str(e)) from e


class IpwCommand(click.Command):
    def invoke(self, ctx: click.Context):
        return _friendly(super().invoke, ctx)


class IpwGroup(click.Group):
    command_class = IpwCommand

    def invoke(self, ctx: click.Context):
        return _friendly(super().invoke, ctx)


IpwGroup.group_class = IpwGroup


def command(*args, **kwargs):
    """``click.command`` with the project's error handling."""
    return click.command(*args, cls=IpwCommand, **kwargs)


def group(*args, **kwargs):
    """``click.group`` with the project's error handling; its sub-commands get it too."""
    return click.group(*args, cls=IpwGroup, **kwargs)
