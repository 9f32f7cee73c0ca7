"""Checks of command-line values shared by several commands (click callbacks)."""

from __future__ import annotations

import math

import click


def number(low: float, strict: bool = False):
    """A click callback: a finite number >= low (> low when ``strict``); NaN and inf are usage errors."""

    def check(ctx, param, value):
        if value is not None and (not math.isfinite(value) or value < low or (strict and value == low)):
            raise click.BadParameter(f"{value!r} is not a finite number {'>' if strict else '>='} {low:g}")
        return value

    return check
