"""Reading the library's on/off environment variables ($NNBACKEND_FUSED, ...): a
value that says neither raises, naming the variable, rather than meaning "on"."""

from __future__ import annotations

import os

ON = ("1", "true", "on", "yes")
OFF = ("0", "false", "off", "no")


def switch(variable: str, default: bool = True) -> bool:
    """``$variable`` as on or off: 1/true/on/yes or 0/false/off/no, in any case;
    ``default`` where it is unset or empty."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if text.lower() in ON:
        return True
    if text.lower() in OFF:
        return False
    raise ValueError(
        f"${variable} is {text!r}: set it to 1 (on) or 0 (off), or unset it "
        f"(default: {'on' if default else 'off'})"
    )
