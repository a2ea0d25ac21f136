"""The FER+ section of a model card: the model scored against ten annotators, and by the command beside it.

FER2013's single labels are noisy, so a card that shows only accuracy on them hides what the
model does on faces the annotators agree about. ``fer-train card MODEL --votes FILE`` measures
the figures (``fer-train evaluate --votes``) and writes them into ``<stem>.card.json`` and into
``<stem>.card.md`` between markers, so regenerating replaces the section instead of adding another.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from train.errors import TrainError

START, END = "<!-- ferplus:start -->", "<!-- ferplus:end -->"
MEASURES = ("accuracy", "agreement", "annotator_share")


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 4) if isinstance(value, float) else
            _rounded(value) if isinstance(value, dict) else value for key, value in figures.items()}


def vote_section(model: str, data: str, split: str, votes: str) -> dict[str, Any]:
    """The card's ``ferplus`` record: the figures on ``split`` and the command that prints them.

    The card ships: the votes file is named (``ferplus/test.csv``) beside its sha256, and the command
    says ``--data $FER2013_DIR --votes $FERPLUS_DIR/test.csv``, not where they are on this machine.
    """
    from train.data_location import votes_name
    from train.evaluate import evaluate_model
    from train.labels import is_fer2013
    from train.machine_free import machine_free_command

    report = evaluate_model(model, data, split, votes=votes)
    assert report.ferplus is not None
    command = machine_free_command(shlex.join(["fer-train", "evaluate", str(model), "--data", str(data),
                                               "--split", split, "--votes", str(votes)]), is_fer2013(report.labels))
    return {"split": split, "images": report.images, "macro_f1": round(report.macro_f1, 4),
            **_rounded(report.ferplus), "votes": votes_name(report.ferplus["votes"]), "command": command}


def render_section(record: dict[str, Any]) -> str:
    clean = record.get("without_duplicates")
    rows = [f"| all {record['images']} {record['split']} images | {record['accuracy']:.4f} | "
            f"{record['agreement']:.4f} ({record['agreement_images']} images) | {record['annotator_share']:.4f} |"]
    if isinstance(clean, dict):
        rows.append(f"| without the {clean['left_out']} that duplicate a training image ({clean['images']}) | "
                    f"{clean['accuracy']:.4f} | {clean['agreement']:.4f} ({clean['agreement_images']} images) | "
                    f"{clean['annotator_share']:.4f} |")
    return "\n".join([
        START,
        "## Against FER+'s ten annotators",
        "",
        "FER2013's labels are one person's call; FER+ (Barsoum et al., 2016) had ten annotators label every "
        "image. *FER+ agreement*: the prediction equals FER+'s majority label (single votes dropped, the top "
        "class holding more than half of the rest; contempt, unclear and not-a-face images left out). "
        "*Annotator share*: the mean share of an image's annotators who chose the predicted class. Duplicates "
        "are test images whose pixels equal a training image's (found by sha256).",
        "",
        "| images | accuracy (original labels) | FER+ agreement | annotator share |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Votes file sha256 `{record['votes_sha256'][:16]}…`. Reproduce:",
        "",
        "```sh",
        record["command"],
        "```",
        END,
    ]) + "\n"


def _with_section(markdown: str, section: str) -> str:
    """``markdown`` with the section replaced, or inserted before the per-class results (else at the end)."""
    if START in markdown and END in markdown:
        head, rest = markdown.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + section + "\n" + tail
    anchor = markdown.find("\n## ")
    if anchor < 0:
        return markdown.rstrip("\n") + "\n\n" + section
    return markdown[:anchor + 1] + section + "\n" + markdown[anchor + 1:]


def write_vote_card(model: str, data: str, votes: str, split: str = "test") -> dict[str, Any]:
    """Measure and write the FER+ section into the card beside ``model`` (``<stem>.card.json/.md``)."""
    path = Path(model)
    card_json, card_md = path.with_suffix(".card.json"), path.with_suffix(".card.md")
    if not card_json.is_file() or not card_md.is_file():
        raise TrainError(f"{path} has no card beside it ({card_json.name}, {card_md.name}); "
                         f"`fer-train ship` writes one")
    try:
        card = json.loads(card_json.read_text())
    except (OSError, ValueError) as exc:
        raise TrainError(f"{card_json} is not readable JSON ({exc})") from None
    markdown = card_md.read_text()
    record = vote_section(model, data, split, votes)  # measured before either file is touched
    card["ferplus"] = record
    _replace(card_json, json.dumps(card, indent=2) + "\n")
    _replace(card_md, _with_section(markdown, render_section(record)))
    return record


def _replace(path: Path, text: str) -> None:
    from train.run_files import atomic_write_text

    atomic_write_text(path, text)
