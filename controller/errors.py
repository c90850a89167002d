"""The project's error hierarchy: one root, a few precise kinds.

Every error a user can provoke with bad input is a subclass of :class:`BwcError` and carries
enough context (file, line, field path) to be reported in one line without a traceback.
"""

from __future__ import annotations


class BwcError(Exception):
    """Root of every error bwcsim raises on purpose."""


class InvalidInput(BwcError):
    """A value failed validation. ``field`` is a dotted/indexed path such as ``timeline[3].at``."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ScenarioError(InvalidInput):
    """A scenario or policy file is invalid. Formats as ``file:line: field: message``."""

    def __init__(
        self, message: str, file: str, line: int | None = None, field: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        super().__init__(message, field)
        where = f"{file}:{line}" if line is not None else file
        self.args = (f"{where}: {field}: {message}" if field else f"{where}: {message}",)

    def __str__(self) -> str:
        return str(self.args[0])


class BusError(BwcError):
    """The MQTT bus (simulated or real) failed or refused an operation."""


class BusRefused(BusError):
    """The broker answered and said no (an MQTT 5 reason code of 0x80 or above, say "not
    authorized"): the link is fine, the operation is not allowed. Worth reporting and retrying
    later, never worth treating as success. ``code`` is the reason code when one was given."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class BusTimeout(BusError):
    """The broker did not answer in time. The operation may or may not have taken effect, so it
    is retried (QoS 1 makes a second copy harmless)."""


class SessionTakenOver(BusError):
    """The broker closed the link because another connection took over the client id."""


class ControllerFailure(BwcError):
    """The controller under test broke the node contract: a child process that crashed, hung,
    or answered garbage or out of order, or a node that raised. The message names the camera,
    the request and what the controller said (a child's stderr tail). Not invalid input: it is
    the finding, so commands report it as a failure (exit 1) and the search saves it."""
