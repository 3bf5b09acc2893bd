"""The base of the errors a user's input can cause (a file, a network, a dataset): one line each.

Messages often embed a library's reason (numpy's, zipfile's), which may span lines; the CLI prints
errors as one line, so the message is folded into one here, once, for every such error."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A user's input that cannot be used; ``str()`` is one line (whitespace runs folded)."""

    def __init__(self, message="", *args):
        super().__init__(" ".join(str(message).split()), *args)
