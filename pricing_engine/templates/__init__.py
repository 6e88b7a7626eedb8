"""Structure templates: data files (JSON) declaring new structures from registered building blocks."""
from __future__ import annotations


def get_template(name: str):
    """The template declaring structure `name`, or None."""
    return None
