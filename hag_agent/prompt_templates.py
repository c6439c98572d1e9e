"""Load the prompt templates from the `prompts/` folder, from a wheel or from a checkout.

Templates use `string.Template` placeholders (``$name``) so the JSON examples inside them need
no escaping. Every placeholder must be filled: a missing one is a bug, and raises.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from string import Template

from hag_agent.errors import ConfigurationError

PROMPT_NAMES = ("classify", "propose", "judge")
"""The templates hag-agent ships."""


def prompts_dir() -> Path:
    """The folder holding the templates: inside the installed wheel, else the checkout's."""
    packaged = resources.files("hag_agent") / "prompts"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parent.parent / "prompts"
    if checkout.is_dir():
        return checkout
    raise ConfigurationError(f"prompt templates not found in {packaged} nor {checkout}")


@functools.cache
def load_template(name: str) -> Template:
    """Read one template by name (without the ``.md`` suffix)."""
    path = prompts_dir() / f"{name}.md"
    if not path.is_file():
        raise ConfigurationError(f"prompt template {name!r} not found at {path}")
    return Template(path.read_text(encoding="utf-8"))


def render(name: str, **values: str) -> str:
    """Fill a template; every placeholder must be given."""
    try:
        return load_template(name).substitute(values).strip()
    except KeyError as exc:
        raise ConfigurationError(f"prompt template {name!r} needs {exc}") from exc
