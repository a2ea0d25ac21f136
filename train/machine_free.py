"""Commands as a card shows them: the data folders of the machine that ran them replaced by what a
user's shell fills in ($FER2013_DIR, $FERPLUS_DIR), so nothing shipped names this machine's paths.
Its own module because both cards (the model card and its FER+ section) write commands."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any


def _placeholders(fer2013: bool) -> tuple[Any, Any]:
    """Shell words standing for data and for a votes file of this machine (``train.data_location``)."""
    from train.data_location import data_placeholder, votes_placeholder

    def data(path: str) -> str:
        shown = data_placeholder(path, fer2013)
        return shown if shown.startswith("$") else shlex.quote(shown)

    def votes(path: str) -> str:
        return votes_placeholder(shlex.quote(Path(path).name))

    return data, votes


def machine_free_setting(change: str, fer2013: bool = True) -> str | None:
    """``data.dir=PATH`` as ``data.dir=$FER2013_DIR``, ``data.votes=PATH`` as ``data.votes=$FERPLUS_DIR/<file>``
    (a schedule part's ``set``, a ``--set`` word); None for any other setting."""
    data, votes = _placeholders(fer2013)
    key, _, value = change.partition("=")
    if key == "data.dir" and value:
        return f"data.dir={data(value)}"
    if key == "data.votes" and value:
        return f"data.votes={votes(value)}"
    return None


def machine_free_command(command: str, fer2013: bool = True) -> str:
    """``command`` with the data it names on this machine replaced by what a user's shell fills in:
    ``--data PATH`` and ``--set data.dir=PATH`` as ``$FER2013_DIR`` (other data by its own name),
    ``--votes PATH`` and ``--set data.votes=PATH`` as ``$FERPLUS_DIR/<file>``. The rest stays as written;
    a command already in placeholders comes back unchanged."""
    data, votes = _placeholders(fer2013)
    try:
        words, shown = shlex.split(command), []
    except ValueError:  # not shell words (an unmatched quote in an old record): left as written
        return command
    for index, word in enumerate(words):
        flag = words[index - 1] if index else ""
        setting = machine_free_setting(word, fer2013) if flag == "--set" else None
        if flag == "--data" and word:
            shown.append(data(word))
        elif flag == "--votes" and word:
            shown.append(votes(word))
        else:
            shown.append(setting or shlex.quote(word))
    return " ".join(shown)


def machine_free_record(value: Any, fer2013: bool) -> Any:
    """Every ``fer-train ...`` command in ``value`` (a card's record, nested) through ``machine_free_command``."""
    if isinstance(value, str):
        return machine_free_command(value, fer2013) if value.startswith("fer-train ") else value
    if isinstance(value, list):
        return [machine_free_record(item, fer2013) for item in value]
    if isinstance(value, dict):
        return {key: machine_free_record(item, fer2013) for key, item in value.items()}
    return value
