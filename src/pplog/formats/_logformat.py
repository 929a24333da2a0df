"""The `LogFormat` value: a named log layout and how to take its lines apart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from pplog.errors import LogFormatError
from pplog.formats import _compiler
from pplog.formats._compiler import Plan, Token, Variable

# nginx's `escape=` parameter, the first word of a format written as one string
_LEADING_ESCAPE = re.compile(r"escape=(\S*)(?:\s+|$)")


@dataclass(frozen=True)
class LogFormat:
    """A log line layout: an nginx `log_format` or an AWS load-balancer layout.

    Parameters
    ----------
    name
        Preset or `log_format` name (``"combined"``, ``"elb_log"``, ...).
    format
        The format string, its pieces already joined as nginx joins them.
    escape
        nginx's ``escape=`` mode: ``"default"``, ``"json"`` or ``"none"``.
    kind
        ``"nginx"`` for `log_format` strings, ``"alb"`` / ``"clb"`` for AWS layouts.
    apache_escapes
        Also read Apache's backslash escapes (``\\"``, ``\\\\``, ``\\t``, ...):
        set for the ``common`` and ``combined`` presets, which Apache writes
        too. nginx writes a backslash only as ``\\x5C``, so nothing it wrote
        reads differently.

    Examples
    --------
    >>> fmt = LogFormat.from_string('$remote_addr [$time_local] "$request" $status')
    >>> fmt.fields
    ('remote_addr', 'time_local', 'request', 'status')
    """

    name: str
    format: str
    escape: str = "default"
    kind: str = "nginx"
    description: str = ""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # AWS layouts bring their own regex (group names are the column names).
    aws_regex: str | None = field(default=None, compare=False, repr=False)
    aws_fields: tuple[str, ...] = field(default=(), compare=False, repr=False)
    apache_escapes: bool = field(default=False, repr=False)

    @classmethod
    def from_string(
        cls, text: str, *, name: str = "custom", escape: str | None = None
    ) -> LogFormat:
        """Compile an nginx `log_format` string (pieces already joined).

        Unless `escape` is given, a leading ``escape=json `` (or
        ``default``/``none``) is read as the escape mode, as on a
        `log_format` line, and any other ``escape=...`` word there is
        refused, as nginx refuses it (values are lowercase). With `escape`
        given, `text` is the format itself, every character of it literal.
        """
        if escape is None:
            escape = "default"
            lead = _LEADING_ESCAPE.match(text)
            if lead is not None:  # `escape=json ...` as on a log_format line
                escape = _compiler.escape_mode(lead.group(1))
                text = text[lead.end() :]
        if escape not in _compiler.ESCAPES:
            msg = f"unknown escape mode `{escape}`; use default, json or none"
            raise LogFormatError(msg)
        if not text.strip():
            msg = "the log format is empty; pass the string from your nginx log_format"
            raise LogFormatError(msg)
        fmt = cls(name=name, format=text, escape=escape)
        fmt.tokens  # noqa: B018 - compile now so errors surface here
        if not fmt.fields:
            msg = f"log format {text!r} has no `$variable`; nothing could be read"
            raise LogFormatError(msg)
        return fmt

    @classmethod
    def from_pieces(cls, pieces: list[str], *, name: str = "custom") -> LogFormat:
        """Compile the arguments of a `log_format` directive after its name."""
        escape, rest, warnings = _compiler.split_escape(list(pieces))
        fmt = cls.from_string("".join(rest), name=name, escape=escape)
        if warnings:
            object.__setattr__(fmt, "warnings", tuple(warnings))
        return fmt

    @cached_property
    def tokens(self) -> tuple[Token, ...]:
        """Literals and variables, in order."""
        if self.kind != "nginx":
            return ()
        return _compiler.tokenize(self.format)

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """Column names of the raw fields, in line order."""
        if self.kind != "nginx":
            return self.aws_fields
        return tuple(t.column for t in self.tokens if isinstance(t, Variable))

    @cached_property
    def variables(self) -> dict[str, str]:
        """Each field's column -> the variable it holds (`status_2`, a
        variable logged twice, holds `status`), typed by that variable."""
        if self.kind != "nginx":
            return {f: f for f in self.aws_fields}
        return {t.column: t.name for t in self.tokens if isinstance(t, Variable)}

    @cached_property
    def plan(self) -> Plan:
        """The compiled parse plan used by `pplog.parse`."""
        if self.aws_regex is not None:
            return Plan(self.aws_regex, None, ())
        return _compiler.plan(self.tokens, self.escape)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """Compile-time warnings: ambiguous neighbours, misplaced `escape=`."""
        return self.warnings + self.plan.warnings

    def group_columns(self) -> dict[str, str]:
        """Regex group name -> column name."""
        if self.kind != "nginx":
            return {f: f for f in self.aws_fields}
        return _compiler.group_names(self.tokens)

    def describe(self) -> str:
        """A multi-line, human-readable account of what the format compiles to."""
        lines = [f"name:    {self.name}", f"kind:    {self.kind}"]
        if self.description:
            lines.append(f"about:   {self.description}")
        if self.kind == "nginx":
            also = " (and Apache's backslash escapes)" if self.apache_escapes else ""
            lines.append(f"escape:  {self.escape}{also}")
            lines.append(f"format:  {self.format}")
        lines.append("columns: " + ", ".join(self.fields))
        strategy = (
            "split on the format's quotes, then per-segment patterns"
            if self.plan.segments is not None
            else "one anchored regular expression per line"
        )
        lines.append(f"parser:  {strategy}")
        lines.append(f"regex:   {self.plan.full_regex}")
        lines.extend(f"warning: {w}" for w in self.all_warnings)
        return "\n".join(lines)
