"""Ship a training run: the model (without optimizer state), its config and history, and a model card.

Every figure on the card is measured here by `fer-train evaluate`'s own code, and the card
prints the commands that reproduce the model and the figures.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

from train.errors import TrainError
from train.evaluate import Report, evaluate_with_and_without_flips, format_report
from train.labels import is_fer2013
from train.machine_free import machine_free_command, machine_free_record, machine_free_setting
from train.outputs import output_folder, refuse_a_file


def _history(run_dir: Path) -> list[dict[str, float]]:
    from train.run_files import read_history

    path = run_dir / "history.csv"
    if not path.is_file():
        raise TrainError(f"{run_dir} has no history.csv: not a training run directory")
    return read_history(path)


def _row_accuracy(row: dict[str, float]) -> float:
    """The better of the epoch's model and, where weights were averaged, the average."""
    return max(row.get("val_accuracy", 0.0), row.get("swa_val_accuracy", 0.0))


def first_stage(run_dir: Path) -> dict[str, Any] | None:
    """The model a run started from and distilled (``train.init``/``train.teacher``), and how it was trained.

    A distilled model is only reproducible with its teacher: the card names the teacher file, and
    when that file sits in a committed run directory (its state.json beside it), the commands that
    trained it, so the whole chain can be rerun.
    """
    from train.config import load_config

    from train.distill import teacher_paths

    config = load_config(run_dir / "config.toml")
    recipe = config.train
    if not (recipe.teacher or recipe.init):
        return None
    stage: dict[str, Any] = {"init": recipe.init, "teacher": recipe.teacher, "teacher_views": recipe.teacher_views,
                             "teacher_weight": recipe.teacher_weight, "teacher_mode": recipe.teacher_mode}
    if config.augment.mixup:
        stage["mixup"] = config.augment.mixup
    if recipe.teacher and len(teacher_paths(recipe.teacher)) > 1:
        # an ensemble's members each have a history of their own: the card points at each one's card,
        # or retraces the committed run it sits in
        stage["teachers"] = [{"model": str(path), "card": _card_beside(path), **_training_of(path, path.stem)}
                             for path in teacher_paths(recipe.teacher)]
        return stage
    return {**stage, **_training_of(Path(recipe.teacher or recipe.init))}


def _training_of(model: Path, replay: str = "first-stage") -> dict[str, Any]:
    """The committed run ``model`` sits in (its state.json beside it) and the commands that retrace it
    (into ``runs/<replay>``)."""
    state_path = model.parent / "state.json"
    if not state_path.is_file():
        return {}
    state = json.loads(state_path.read_text())
    schedule = state.get("schedule") or [{"from_epoch": 1, "epochs": int(state.get("total_epochs", 1))}]
    return {"run": str(model.parent),
            "commands": train_commands(None, Path("runs") / replay, schedule) + [
                f"fer-train ship runs/{replay} --out {model.parent} --name {model.stem}"]}


def _card_beside(model: Path) -> str | None:
    card = model.with_name(f"{model.stem}.card.md")
    return str(card) if card.is_file() else None


def _prior_choice(model: Any, best: Path, val: Any | None, mode: str) -> tuple[Any, Any]:
    """Whether undoing the run's class weights helps on validation (``train.prior``), and the weights.

    ``val`` None (a refit): no measurement, the shipping command's ``mode`` decides.
    """
    from train.evaluate import predict_probs
    from train.prior import as_asked, choose, run_class_weights, softmax_layer

    weights = run_class_weights(best)
    has_softmax = softmax_layer(model) is not None
    if val is None:
        return as_asked(weights, has_softmax, mode), weights
    probs = predict_probs(model, val.images)
    return choose(val.targets, probs, weights, val.labels, has_softmax, mode), weights


SHIP_FLAGS = {"auto": "", "keep": " --keep-class-weights", "undo": " --undo-class-weights"}


def ship_run(run_dir: Path, out_dir: Path, name: str, data: str, split: str = "test",
             config_path: str | None = None, prior_correction: str = "auto",
             votes: str | None = None) -> dict[str, Any]:
    """Copy the run's best model into ``out_dir`` as ``<name>.keras`` and write its card.

    With ``prior_correction`` "auto", the run's class weights are undone in the shipped model when
    that raises validation accuracy without lowering macro-F1 (``train.prior``); "undo" and "keep"
    decide it outright, which a refit (no validation split) must.
    """
    from train.data import load_dataset
    from train.data_location import data_name
    from train.evaluate import load_keras_model, model_labels, validation_split
    from train.run_info import read_dataset_record

    run_dir = Path(run_dir)
    holds = "the shipped model and its card"
    out_dir = refuse_a_file(out_dir, holds)
    best = run_dir / "best.keras"
    if not best.is_file():
        raise TrainError(f"{run_dir} has no best.keras yet")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise TrainError(f"--name {name!r} must be a plain file name (no folders, not hidden)")
    history = _history(run_dir)
    try:
        state = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise TrainError(f"{run_dir} is not a complete training run: {exc}") from None
    dataset = read_dataset_record(run_dir / "dataset.json")  # names the file when it is missing or torn
    output_folder(out_dir, holds)

    model = load_keras_model(best)  # float32, no optimizer: a third of the checkpoint's size
    refit = int(dataset.get("val_images", 1)) == 0
    # decoded once: the prior choice and the card both score it
    val_data = None if refit else validation_split(best, data)
    # the split scored is decoded before anything is written: a wrong --data or --split must fail here,
    # not after a model already shipped under this name has been replaced
    if split == "val":
        test_data = val_data if val_data is not None else validation_split(best, data)
    else:
        spec, options = model_labels(best)
        test_data = load_dataset(data, split, spec, **options)
    prior, weights = _prior_choice(model, best, val_data, prior_correction)
    if prior.applied:
        from train.prior import apply_to_model

        apply_to_model(model, weights)
    model_path = out_dir / f"{name}.keras"
    tmp = out_dir / f".{name}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, model_path)
    # what ships beside the model names its data by name and fingerprint, no folder of this machine
    fer2013 = is_fer2013(tuple(dataset["labels"]))
    config_text = (run_dir / "config.toml").read_text()
    dataset = shipped_dataset(dataset, config_text)
    _write(out_dir / f"{name}.config.toml", shipped_config(config_text, fer2013))
    _write(out_dir / f"{name}.dataset.json", json.dumps(dataset, indent=2) + "\n")
    shutil.copyfile(run_dir / "history.csv", out_dir / f"{name}.history.csv")

    eval_dir = out_dir / f"{name}_eval"
    report, tta = evaluate_with_and_without_flips(model_path, data, split, eval_dir, dataset=test_data,
                                                  name=data_name(data, split))
    # choices such as baking flips into the exported model are made on validation, never on test
    validation = None
    if val_data is not None:
        val, val_tta = evaluate_with_and_without_flips(model_path, data, "val", dataset=val_data)
        validation = {"images": val.images, "accuracy": round(val.accuracy, 4),
                      "accuracy_with_flip_tta": round(val_tta.accuracy, 4)}
    # a refit chose nothing: its model is the schedule's end point
    best_row = history[-1] if refit else max(history, key=_row_accuracy)
    schedule = state.get("schedule") or [{"from_epoch": 1, "epochs": int(state.get("total_epochs", len(history)))}]
    card = {
        "name": name,
        "architecture": model.name,
        "parameters": int(model.count_params()),
        "input": "48x48 greyscale, raw pixels 0..255 (rescaling inside the model)",
        "labels": dataset["labels"],
        "training_data": dataset["source"],
        "training": {
            "config": f"{name}.config.toml",
            "history": f"{name}.history.csv",
            "epochs_done": int(state["epochs_done"]),
            "epochs_planned": int(state.get("total_epochs", len(history))),
            "schedule": schedule,
            "class_counts": dataset.get("train_class_counts", {}),
            "best_epoch": int(best_row["epoch"]),
            "best_val_accuracy": None if refit else round(_row_accuracy(best_row), 4),
            # best.keras is the mean of the weights of epochs weight_average_from..best_epoch (swa)
            "weight_average_from": int(state.get("best_average_from", 0)),
            "train_images": dataset["train_images"],
            "val_images": dataset["val_images"],
            "train_fingerprint": dataset["train_fingerprint"],
            "first_stage": first_stage(run_dir),
            "prior_correction": prior.to_dict(),
        },
        "validation": validation,
        "evaluation": _evaluation(report, tta, name),
        "commands": {
            "train": train_commands(config_path, run_dir, schedule),
            "resume": _base_command(config_path, run_dir, schedule) + " --resume"
                      + (f" --epochs {schedule[-1]['epochs']}" if len(schedule) > 1 else "")
                      + _set_flags(schedule, len(schedule) - 1),
            "ship": shlex.join(["fer-train", "ship", str(run_dir), "--out", str(out_dir), "--name", name])
                    + SHIP_FLAGS[prior_correction],
            "evaluate": _evaluate_command(model_path, data, split),
        },
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    card = _machine_free_commands(card)
    _write_card(out_dir, name, card, report)
    if votes:  # the FER+ section, as `fer-train card` writes it
        from train.vote_card import write_vote_card

        card["ferplus"] = write_vote_card(str(model_path), data, votes, split)
    return card


def _evaluation(report: Report, tta: Report, name: str) -> dict[str, Any]:
    """The card's test figures: the data by name beside its fingerprint (``report.data`` is the name)."""
    return {
        "data": report.data, "data_fingerprint": report.data_fingerprint, "images": report.images,
        "accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4),
        "accuracy_with_flip_tta": round(tta.accuracy, 4),
        "per_class": {k: {m: round(v, 4) if isinstance(v, float) else v for m, v in pc.items()}
                      for k, pc in report.per_class.items()},
        "confusion_matrix": f"{name}_eval/confusion_matrix.png",
    }


def _evaluate_command(model_path: Path, data: str, split: str) -> str:
    return shlex.join(["fer-train", "evaluate", str(model_path), "--data", str(data), "--split", split])


def _write(path: Path, text: str) -> None:
    from train.run_files import atomic_write_text

    atomic_write_text(path, text)


def _write_card(out_dir: Path, name: str, card: dict[str, Any], report: Report) -> None:
    """``<name>.card.json`` and ``.card.md``; a FER+ record the card holds keeps its section."""
    markdown = render_card(card, report)
    if isinstance(card.get("ferplus"), dict):
        from train.vote_card import _with_section, render_section

        markdown = _with_section(markdown, render_section(card["ferplus"]))
    _write(out_dir / f"{name}.card.json", json.dumps(card, indent=2) + "\n")
    _write(out_dir / f"{name}.card.md", markdown)


# --- what ships names no folder of the machine that made it -------------------------------------


def _machine_free_commands(card: dict[str, Any]) -> dict[str, Any]:
    """The card with its commands (its own, its first stage's, its FER+ section's) in placeholders."""
    fer2013 = is_fer2013(tuple(card["labels"]))
    card = dict(card)
    card["commands"] = machine_free_record(card["commands"], fer2013)
    training = card["training"] = dict(card["training"])
    if training.get("first_stage"):
        training["first_stage"] = machine_free_record(training["first_stage"], fer2013)
    if isinstance(training.get("schedule"), list):  # each part's --set words, as the run recorded them
        training["schedule"] = [
            {**part, "set": [machine_free_setting(change, fer2013) or change for change in part["set"]]}
            if isinstance(part, dict) and isinstance(part.get("set"), list) else part
            for part in training["schedule"]]
    if isinstance(card.get("ferplus"), dict):
        from train.data_location import votes_name

        record = card["ferplus"]
        card["ferplus"] = {**record, **({"votes": votes_name(record["votes"])} if record.get("votes") else {}),
                           "command": machine_free_command(record["command"], fer2013)}
    return card


def shipped_config(text: str, fer2013: bool = True) -> str:
    """A run's config.toml as it ships beside the model: ``[data] dir`` is empty for FER2013 (FER2013_DIR,
    else data/fer2013/: wherever the reader keeps it), other data's the folder's own name; ``votes`` is
    ``$FERPLUS_DIR/<file>``, filled in from the environment when the config is read. Only those lines change."""
    import tomllib

    from train.data_location import data_placeholder, votes_placeholder

    lines, section = text.splitlines(keepends=True), ""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[] ")
            continue
        key = stripped.partition("=")[0].strip()
        if section != "data" or key not in ("dir", "votes"):
            continue
        try:
            value = tomllib.loads(stripped)[key]
        except tomllib.TOMLDecodeError:
            continue  # not one line of `key = "value"`: the config was not written by fer-train
        if not isinstance(value, str) or not value:
            continue
        if key == "dir":
            value = "" if fer2013 else data_placeholder(value, fer2013=False)
        else:
            value = votes_placeholder(Path(value).name)
        lines[index] = f"{key} = {json.dumps(value)}\n"
    return "".join(lines)


def shipped_dataset(record: dict[str, Any], config_text: str) -> dict[str, Any]:
    """A run's dataset.json as it ships: the training data by name (``fer2013/train``) beside its
    fingerprint, the FER+ votes file by name (``ferplus/train.csv``) beside its sha256."""
    import tomllib

    from train.data_location import data_name, votes_name

    data = tomllib.loads(config_text).get("data", {})
    record = dict(record)
    if isinstance(data.get("dir"), str) and data["dir"].strip():
        record["source"] = data_name(data["dir"], str(data.get("split") or "train"))
    votes = record.get("votes")
    if isinstance(votes, dict) and votes.get("file"):
        record["votes"] = {**votes, "file": votes_name(votes["file"])}
    return record


def rewrite_card(model: str | Path, data: str, split: str = "test") -> dict[str, Any]:
    """Measure a shipped model on ``split`` again and write its card as `fer-train ship` writes one today.

    The card's test figures, ``<stem>_eval/`` and the card's text are written anew; what ship recorded
    about training (history, first stage, validation, class weights) is kept; the records beside the model
    (``<stem>.config.toml``, ``<stem>.dataset.json``) and every command name the data by name and
    placeholder, no folder of the machine that shipped it. Needs no run directory.
    """
    from train.data import load_dataset
    from train.data_location import data_name
    from train.evaluate import model_labels
    from train.run_info import read_dataset_record

    path = Path(model)
    stem, folder = path.stem, path.parent
    card = read_ship_card(path)
    spec, options = model_labels(path)
    test_data = load_dataset(data, split, spec, **options)  # a wrong --data fails before anything is written
    report, tta = evaluate_with_and_without_flips(path, data, split, folder / f"{stem}_eval", dataset=test_data,
                                                  name=data_name(data, split))
    fer2013 = is_fer2013(tuple(card["labels"]))
    config_path, dataset_path = folder / f"{stem}.config.toml", folder / f"{stem}.dataset.json"
    if config_path.is_file():
        config_text = config_path.read_text()
        if dataset_path.is_file():
            dataset = shipped_dataset(read_dataset_record(dataset_path), config_text)
            _write(dataset_path, json.dumps(dataset, indent=2) + "\n")
            card["training_data"] = dataset["source"]
        _write(config_path, shipped_config(config_text, fer2013))
    card["evaluation"] = _evaluation(report, tta, stem)
    card["commands"]["evaluate"] = _evaluate_command(path, data, split)
    card = _machine_free_commands(card)
    _write_card(folder, stem, card, report)
    return card


def read_ship_card(model: Path) -> dict[str, Any]:
    """The card.json `fer-train ship` wrote beside ``model``; a TrainError naming it otherwise."""
    card_json = Path(model).with_suffix(".card.json")
    try:
        card = json.loads(card_json.read_text())
    except OSError:
        raise TrainError(f"{model} has no card beside it ({card_json.name}); `fer-train ship` writes one") from None
    except ValueError as exc:
        raise TrainError(f"{card_json} is not readable JSON ({exc})") from None
    if not is_ship_card(card):
        raise TrainError(f"{card_json} was not written by `fer-train ship` (no training, evaluation and "
                         f"commands records): only its FER+ section can be written (--votes)")
    return card


def is_ship_card(card: Any) -> bool:
    return isinstance(card, dict) and all(isinstance(card.get(key), dict)
                                          for key in ("training", "evaluation", "commands")) and "labels" in card


def _set_flags(schedule: list[dict[str, Any]], upto: int) -> str:
    """The ``--set`` flags that replay the recipe changes in force in schedule part ``upto``.

    Each part records only what it changed from the one before, but every command starts from the
    config file, so a part's command carries all earlier changes too (a later value wins).
    """
    changes: dict[str, str] = {}
    for segment in schedule[:upto + 1]:
        for change in segment.get("set", []):
            key, _, value = change.partition("=")
            changes.pop(key, None)
            changes[key] = value
    return "".join(f" --set {shlex.quote(f'{key}={value}')}" for key, value in changes.items())


# Runs from before the first schedule part recorded its config file were all started from this one.
LEGACY_CONFIG = "train/configs/shipped.toml"


def _base_command(config_path: str | None, run_dir: Path, schedule: list[dict[str, Any]]) -> str:
    """``fer-train --config FILE --out RUN``: the file given, else the one the run was started from."""
    if config_path is None:
        config_path = schedule[0].get("config", LEGACY_CONFIG)
    return "fer-train" + (f" --config {shlex.quote(config_path)}" if config_path else "") + \
        f" --out {shlex.quote(str(run_dir))}"


def train_commands(config_path: str | None, run_dir: Path, schedule: list[dict[str, Any]]) -> list[str]:
    """The commands that retrace the run, one per learning-rate schedule it ran under.

    A run shortened or extended on resume (``--epochs N --resume``) changed its cosine schedule part
    way; replaying it needs each part stopped where the next one began. The first part carries what
    the run's own command line changed in its config file.
    """
    base = _base_command(config_path, run_dir, schedule)
    if len(schedule) == 1:
        return [base + f" --epochs {schedule[0]['epochs']}" + _set_flags(schedule, 0)]
    commands = []
    for index, segment in enumerate(schedule):
        command = base + (" --resume" if index else "") + f" --epochs {segment['epochs']}"
        command += _set_flags(schedule, index)
        if index + 1 < len(schedule):
            command += f" --stop-after {schedule[index + 1]['from_epoch'] - 1}"
        commands.append(command)
    return commands


def _description(card: dict[str, Any]) -> str:
    kind = "A compact VGG-style CNN" if card["architecture"].startswith("fer_vgg") else f"A {card['architecture']} model"
    data = ("FER2013's training split" if is_fer2013(tuple(card["labels"]))
            else f"{len(card['labels'])} classes from {card.get('training_data', 'your data')}")
    return (f"{kind} ({card['parameters']:,} parameters) for facial emotion recognition on 48x48 greyscale "
            f"faces, trained on {data}.")


def _limitations(card: dict[str, Any]) -> str:
    if is_fer2013(tuple(card["labels"])):
        return ("FER2013 is low-resolution, mostly frontal, noisy in its labels (human agreement is about 65%), "
                "and skewed (436 training images of disgust). Expressions are posed or in-the-wild web images, "
                "not a camera in a room; expect lower accuracy on off-axis faces, poor light, and people "
                "under-represented in FER2013. Do not use it to make decisions about people.")
    counts = card["training"].get("class_counts") or {}
    smallest = min(counts.items(), key=lambda item: item[1]) if counts else None
    skew = (f" Its smallest class, {smallest[0]}, has {smallest[1]} training images; expect it to be the least "
            f"reliable." if smallest else "")
    return (f"The model knows only what its {card['training']['train_images']} training images show: the "
            f"people, cameras, light and framing in them.{skew} The test figures above come from the same "
            "source as the training data, so they overstate accuracy on a new camera or new people; measure "
            "on data from the device before relying on it. Do not use it to make decisions about people.")


def _prior_lines(prior: dict[str, Any] | None) -> list[str]:
    if prior and prior.get("applied") and prior.get("val_accuracy") is None:
        return ["- **Class weights** undone in this model (the final bias shifted by -log w), as its shipping "
                "command says: a refit has no validation split to decide it on."]
    if not prior or prior.get("corrected_val_accuracy") is None:
        return []
    verdict = "undone in this model" if prior["applied"] else "kept"
    return [f"- **Class weights** {verdict} (the final bias shifted by -log w, decided on validation: it "
            f"{prior['reason']}): validation accuracy {prior['val_accuracy']:.4f} -> "
            f"{prior['corrected_val_accuracy']:.4f}, macro-F1 {prior['val_macro_f1']:.4f} -> "
            f"{prior['corrected_val_macro_f1']:.4f} when undone."]


def _views_phrase(stage: dict[str, Any]) -> str:
    """What the teachers looked at: clean faces once (fixed), or each augmented batch (consistent)."""
    if stage.get("teacher_mode") == "consistent":
        return ("on the augmented batch the student saw in each step"
                + (f" (faces blended in pairs by mixup, Beta({stage['mixup']}, {stage['mixup']}))"
                   if stage.get("mixup") else "")
                + (" and on its mirror image" if stage["teacher_views"] == 2 else ""))
    return f"averaged over {stage['teacher_views']} mirrored and shifted views of each training face"


def _first_stage_lines(stage: dict[str, Any] | None) -> list[str]:
    if not stage:
        return []
    lines = []
    views = _views_phrase(stage)
    if stage.get("teachers"):
        lines.append(f"Distilled from an ensemble of {len(stage['teachers'])} models: the targets are their "
                     f"predictions {views}, averaged over the models (weight {stage['teacher_weight']}; "
                     f"the rest is the true label)"
                     + (f", starting from the weights of `{stage['init']}`." if stage.get("init") else "."))
        for member in stage["teachers"]:
            if member["card"]:
                lines += ["", f"- `{member['model']}`, trained as its card `{member['card']}` says"]
            elif member.get("commands"):
                lines += ["", f"- `{member['model']}`, committed beside its run's records, trained by:", "", "  ```sh",
                          *[f"  {command}" for command in member["commands"]], "  ```"]
            else:
                lines += ["", f"- `{member['model']}`, whose training is not recorded beside it"]
        return [*lines, "", "This model was trained from them by:", ""]
    if stage.get("teacher"):
        lines.append(f"Distilled from `{stage['teacher']}`: the targets are its predictions "
                     f"{views} (weight {stage['teacher_weight']}; the rest is the true label)"
                     + (f", starting from the weights of `{stage['init']}`." if stage.get("init") else "."))
    else:
        lines.append(f"Fine-tuned from the weights of `{stage['init']}`.")
    if stage.get("commands"):
        lines += ["That first-stage model is committed, so the commands below run as they are; it was trained by:",
                  "", "```sh", *stage["commands"], "```", "", "and this model from it by:"]
    return [*lines, ""]


def _chosen(t: dict[str, Any]) -> str:
    averaged = (f", the average of the weights of epochs {t['weight_average_from']}..{t['best_epoch']}"
                if t.get("weight_average_from") else "")
    if t.get("best_val_accuracy") is None:
        return f"no validation: the model is the schedule's end point, epoch {t['best_epoch']}{averaged}"
    return f"best validation accuracy {t['best_val_accuracy']:.4f} at epoch {t['best_epoch']}{averaged}"


def _validation_line(validation: dict[str, Any] | None) -> str:
    if validation is None:
        return ("- **Validation**: none. This is a refit (`data.val_fraction = 0`): it trained on every training "
                "image, with a recipe and choices made on an earlier run's validation split.")
    return (f"- **Validation** ({validation['images']} images of the run's own split, where choices such as "
            f"test-time flips are made): {validation['accuracy']:.4f}; with flips "
            f"{validation['accuracy_with_flip_tta']:.4f}.")


def _data_line(t: dict[str, Any]) -> str:
    if not t["val_images"]:
        held = (f"{t['train_images']} training images (all of the training split, none held out; the test split "
                f"was never used for model selection)")
    else:
        held = (f"{t['train_images']} training and {t['val_images']} validation images (a seeded, stratified "
                f"split of the training data; the test split was never used for model selection)")
    return f"- **Data**: {held}. Fingerprint `{t['train_fingerprint'][:16]}…`."


def render_card(card: dict[str, Any], report: Report) -> str:
    t, e, c = card["training"], card["evaluation"], card["commands"]
    status = ("complete" if t["epochs_done"] >= t["epochs_planned"]
              else f"in progress: {t['epochs_done']} of {t['epochs_planned']} planned epochs")
    lines = [
        f"# Model card: {card['name']}",
        "",
        _description(card),
        "",
        f"- **Training status**: {status} ({_chosen(t)}).",
        f"- **Test accuracy** on {e['data']} ({e['images']} images): **{e['accuracy']:.4f}**, "
        f"macro-F1 {e['macro_f1']:.4f}; with horizontal-flip test-time averaging {e['accuracy_with_flip_tta']:.4f}.",
        _validation_line(card.get("validation")),
        *_prior_lines(t.get("prior_correction")),
        f"- **Labels** (output order): {', '.join(card['labels'])}.",
        f"- **Input**: {card['input']}.",
        _data_line(t),
        "",
        "## Per-class results on the test split",
        "",
        "```",
        format_report(report),
        "```",
        "",
        f"![confusion matrix]({e['confusion_matrix']})",
        "",
        "## Reproduce",
        "",
        *_first_stage_lines(t.get("first_stage")),
        "```sh",
        *[f"{command}  # schedule part {index + 1} of {len(c['train'])}" if len(c["train"]) > 1 else command
          for index, command in enumerate(c["train"])],
        f"{c['resume']}  # continue after an interruption",
        f"{c['ship']}         # this card",
        f"{c['evaluate']}  # the figures above",
        "```",
        "",
        "## Limitations",
        "",
        _limitations(card),
        "",
    ]
    return "\n".join(lines)
