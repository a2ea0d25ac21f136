"""``fer-train``: ``train`` a model (the default command), ``evaluate``, ``ship`` or ``recalibrate`` one, ``combine``
several, or ``report`` on data; ``fer-train --help`` lists them, ``fer-train COMMAND --help`` has each one's options.

Parsing only; the work is in ``training.train`` and ``evaluate.evaluate``, and library
exceptions become one-line messages with exit code 2 here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from edge.cli import ArgumentParser, commands_parser
from edge.errors import ExitStatus


DESCRIPTION = ("Train a facial-emotion CNN on FER2013 (Kaggle folders, its zip, or fer2013.csv) or on your own "
               "folder-per-class data or CSV, then evaluate, ship, recalibrate or combine models.")


def _train_parser() -> argparse.ArgumentParser:
    from train.console import DefaultCommandParser

    parser = DefaultCommandParser(
        prog="fer-train", command="train", usage="fer-train [train] --out RUN [options]",
        description="Train a facial-emotion CNN on FER2013 (Kaggle folders, its zip, or fer2013.csv) or on your "
        "own folder-per-class data or CSV (--labels auto). 'train' may be left out.",
    )
    parser.add_argument("--config", help="TOML config file (see train/configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config key, e.g. --set train.epochs=5 (repeatable)")
    parser.add_argument("--data", help="shortcut for --set data.dir=PATH (default: the config's, else $FER2013_DIR, "
                        "else data/fer2013/)")
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--arch", help="shortcut for --set model.arch=NAME "
                        "(vgg, resnet, tiny, mobilenetv2, efficientnetb0)")
    parser.add_argument("--labels", help="shortcut for --set data.labels=... (fer2013, auto, or a,b,c in output order)")
    parser.add_argument("--weights", help="shortcut for --set model.weights=PATH: the ImageNet weights file "
                        "(include_top=False) keras.applications would download; nothing is downloaded")
    parser.add_argument("--votes", help="shortcut for --set data.votes=CSV: FER+ votes for the training images "
                        "(file,neutral,...,NF rows; FER+'s train.csv)")
    parser.add_argument("--votes-mix", type=float, metavar="X", help="shortcut for --set train.votes_mix=X: "
                        "the votes' share of each label target (0 = original labels only, 1 = votes only)")
    parser.add_argument("--out", type=Path, help="run directory (created; required unless --print-config)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--stop-after", type=int, metavar="EPOCH",
                        help="stop after this epoch, keeping the schedule's length (continue later with --resume)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    return parser


def _evaluate_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train evaluate",
        description="Accuracy, macro-F1, per-class precision/recall/F1 and a confusion matrix (PNG and JSON).",
    )
    parser.add_argument("model", help="a .keras model, or several separated by commas: an ensemble, scored on "
                        "its members' averaged probabilities")
    parser.add_argument("--data", help="Kaggle folder (root or one split), its zip, or fer2013.csv "
                        "(default: $FER2013_DIR, else data/fer2013/)")
    parser.add_argument("--split", default="test", help="train, test (default), private (csv only), or val: "
                        "the run's own validation split, re-drawn from the config beside the model")
    parser.add_argument("--out", type=Path, help="folder for metrics.json and confusion_matrix.png/.json")
    parser.add_argument("--tta", action="store_true", help="average predictions with horizontally flipped faces")
    parser.add_argument("--views", type=int, choices=(1, 2, 6, 10), default=1,
                        help="average each model over this many views of every face: 2 is --tta, 6 adds 2-px "
                        "horizontal shifts, 10 vertical ones too (the views train.teacher_views distils)")
    parser.add_argument("--labels", help="the model's labels (fer2013, auto or a,b,c; default: its run's "
                        "dataset.json beside the model, else fer2013)")
    parser.add_argument("--votes", help="FER+ votes for the split's images (FER+'s test.csv; "
                        "train.csv for train and val): adds agreement with the FER+ majority label, the annotators' "
                        "share, and every figure without the faces that duplicate a training face")
    parser.add_argument("--crop-faces", action="store_true", help="crop the largest Haar face of each image first "
                        "(whole photos, e.g. a folder of portraits with a folder per class)")
    return parser


def _card_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train card",
        description="Measure a shipped model again and write its card anew (<stem>.card.json and .card.md, "
        "<stem>_eval/, the data named by name and placeholder in it and the records beside the model; what "
        "ship recorded of training is kept); with --votes, also its figures against FER+'s ten annotators, "
        "with the command that prints them (replacing an earlier section).",
    )
    parser.add_argument("model", help="a .keras model with its card beside it (fer-train ship writes both)")
    parser.add_argument("--data", help="FER2013 (default: $FER2013_DIR, else data/fer2013/)")
    parser.add_argument("--split", default="test", help="the split the card's figures are measured on "
                        "(default: %(default)s)")
    parser.add_argument("--votes", help="FER+ votes for the split (ferplus/test.csv; train.csv for train and val); "
                        "a card fer-train ship did not write takes only this section")
    return parser


def _test_fraction(text: str) -> float:
    """The trainer's bound on data.test_fraction, so a report shows the split training would make."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 0.5)")
    return value


def _report_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train report",
        description="A data report: class counts, sample grids per class, image size and brightness "
        "histograms, exact and near duplicates within and across splits (Markdown + PNG).",
    )
    parser.add_argument("data", help="a folder, zip or CSV, as for training")
    parser.add_argument("--out", type=Path, help="output folder (default: report/ in the current folder)")
    parser.add_argument("--labels", default="detect",
                        help="fer2013, auto or a,b,c (default: fer2013 when every class is a FER2013 class, else auto)")
    parser.add_argument("--test-fraction", type=_test_fraction, default=None,
                        help="for data without a test split, in [0, 0.5) as data.test_fraction (default: 0.1)")
    parser.add_argument("--near-distance", type=int, default=2,
                        help="largest Hamming distance between 64-bit dHashes that counts as a near duplicate (default 2: "
                        "on FER2013, 1-2 are the same photo re-cropped or re-watermarked; at 4 about half are different faces)")
    return parser


def _ship_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train ship",
        description="Copy a run's best model into models/ and write its model card (figures measured here).",
    )
    parser.add_argument("run_dir", type=Path, help="training run directory")
    parser.add_argument("--out", type=Path, default=Path("models"),
                        help="folder the model, its card and records go to (default: %(default)s)")
    parser.add_argument("--name", default="fer_vgg", help="file stem there: NAME.keras, NAME.card.md, ... "
                        "(default: %(default)s)")
    parser.add_argument("--data", help="test data for the card (default: $FER2013_DIR, else data/fer2013/)")
    parser.add_argument("--split", default="test", help="the split the card's figures are measured on "
                        "(default: %(default)s)")
    parser.add_argument("--votes", help="FER+ votes for --split (FER+'s test.csv): adds the card's FER+ "
                        "section, as `fer-train card` does")
    parser.add_argument("--config-path", default=None,
                        help="config file named in the card's reproduce commands (default: the one the run "
                        "was started with; train/configs/shipped.toml for runs that did not record it)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--keep-class-weights", action="store_const", dest="prior", const="keep", default="auto",
                        help="ship the model as trained, without trying to undo its class weights on validation")
    choice.add_argument("--undo-class-weights", action="store_const", dest="prior", const="undo",
                        help="undo the class weights whatever validation says (a refit, with no validation "
                        "split, must say one or the other, as decided for its recipe)")
    return parser


def _recalibrate_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train recalibrate",
        description="Measure a model's batch-norm statistics again on 8,192 clean training images of its run "
        "(dropout off) and save the result as a new model: statistics gathered under augmentation do not "
        "match un-augmented faces.",
    )
    parser.add_argument("model", type=Path, help="a .keras model with its run's config.toml beside it")
    parser.add_argument("--out", type=Path, required=True, help="the new .keras file (must not exist)")
    parser.add_argument("--data", help="the data the run trained on (its config's data.dir is replaced by this; "
                        "default: that data.dir when it is there, else $FER2013_DIR, else data/fer2013/)")
    return parser


def _combine_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="fer-train combine",
        description="Several models as one .keras model averaging their probabilities (an ensemble that "
        "converts and runs on the edge as a single artifact).",
    )
    parser.add_argument("models", help="two or more .keras models separated by commas")
    parser.add_argument("--out", type=Path, required=True, help="the combined .keras file (must not exist)")
    return parser


def _data(given: str | Path | None) -> str:
    """--data, else FER2013_DIR, else data/fer2013/; "" when none is there, which the command reports (where
    FER2013 comes from) once its other inputs have been checked."""
    from train.data_location import find_fer2013

    found = find_fer2013(given)
    return "" if found is None else str(found)


def cmd_train(argv: list[str]) -> int:
    parser = _train_parser()
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    for key, value in (("data.dir", args.data), ("train.epochs", args.epochs), ("model.arch", args.arch),
                       ("data.labels", args.labels), ("model.weights", args.weights),
                       ("data.votes", args.votes), ("train.votes_mix", args.votes_mix)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.print_config:  # shows what a run would use: no run folder needed
        from train.config import load_config

        print(load_config(args.config, overrides).to_toml())
        return ExitStatus.OK
    if args.out is None:
        parser.error("the following arguments are required: --out")
    from train.training import train_from_files

    result = train_from_files(args.config, overrides, args.out, args.resume, args.stop_after)
    model = (f"the weight average of epochs {result.average_from}-{result.best_epoch}" if result.average_from
             else f"epoch {result.best_epoch}'s end point")
    chosen = (f"no validation (a refit): the model is {model}"
              if result.best_val_accuracy is None
              else f"best validation accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}")
    print(f"done: {result.epochs_done} epochs, {chosen}; model: {result.run_dir / 'model.keras'}")
    return ExitStatus.OK


def cmd_evaluate(argv: list[str]) -> int:
    args = _evaluate_parser().parse_args(argv)
    from train.evaluate import evaluate_model, format_report

    report = evaluate_model(args.model, _data(args.data), args.split, args.out, tta=args.tta,
                            labels=args.labels, views=args.views, votes=args.votes, crop_faces=args.crop_faces)
    print(format_report(report))
    return ExitStatus.OK


def cmd_ship(argv: list[str]) -> int:
    args = _ship_parser().parse_args(argv)
    from train.model_card import ship_run

    card = ship_run(args.run_dir, args.out, args.name, _data(args.data), args.split, args.config_path, args.prior,
                    args.votes)
    print(f"shipped {args.out / (args.name + '.keras')}: test accuracy {card['evaluation']['accuracy']:.4f}, "
          f"card {args.out / (args.name + '.card.md')}")
    return ExitStatus.OK


def cmd_card(argv: list[str]) -> int:
    args = _card_parser().parse_args(argv)
    import json

    from train.model_card import is_ship_card, rewrite_card
    from train.vote_card import write_vote_card

    data = _data(args.data)
    try:
        shipped = is_ship_card(json.loads(Path(args.model).with_suffix(".card.json").read_text()))
    except (OSError, ValueError):
        shipped = False  # write_vote_card names what is missing or unreadable
    if shipped:
        card = rewrite_card(args.model, data, args.split)
        evaluation = card["evaluation"]
        print(f"card of {args.model}: accuracy {evaluation['accuracy']:.4f}, macro-F1 {evaluation['macro_f1']:.4f} "
              f"on {evaluation['images']} {args.split} images ({evaluation['data']})")
    elif not args.votes:
        from train.model_card import read_ship_card

        read_ship_card(Path(args.model))  # the error: no card, unreadable, or only a FER+ section to write
    if args.votes:
        record = write_vote_card(args.model, data, args.votes, args.split)
        print(f"card of {args.model}: accuracy {record['accuracy']:.4f}, FER+ agreement {record['agreement']:.4f}, "
              f"annotator share {record['annotator_share']:.4f} on {record['images']} {args.split} images")
    return ExitStatus.OK


def cmd_recalibrate(argv: list[str]) -> int:
    args = _recalibrate_parser().parse_args(argv)
    from train.recalibrate import recalibrate_model
    from train.run_info import recorded_data

    layers = recalibrate_model(args.model, _data(args.data or recorded_data(args.model)), args.out)
    print(f"recalibrated {layers} batch-norm layers: {args.out}")
    return ExitStatus.OK


def cmd_combine(argv: list[str]) -> int:
    args = _combine_parser().parse_args(argv)
    from train.combine import combine_models

    combined = combine_models(args.models, args.out)
    scope = ("--split val scores it" if combined.same_validation
             else "its members held out different faces, so it has no validation split")
    print(f"combined {combined.members} models into {combined.path} ({combined.parameters:,} parameters); {scope}")
    return ExitStatus.OK


def cmd_report(argv: list[str]) -> int:
    args = _report_parser().parse_args(argv)
    from train.report import write_report

    summary = write_report(args.data, args.out or Path("report"), labels=args.labels,
                           test_fraction=args.test_fraction, near_distance=args.near_distance)
    print(summary)
    return ExitStatus.OK


# name: (what `fer-train --help` says of it, its handler); "train" runs when no command is named
COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "train": ("train a model into a run folder (the default: 'fer-train --out RUN' is 'fer-train train --out RUN')",
              cmd_train),
    "evaluate": ("accuracy, macro-F1, per-class figures and a confusion matrix of a model or an ensemble",
                 cmd_evaluate),
    "ship": ("copy a run's best model into models/ and write its model card", cmd_ship),
    "card": ("measure a shipped model again and write its card anew (--votes: with FER+'s ten annotators)", cmd_card),
    "recalibrate": ("measure a model's batch-norm statistics again on clean training images", cmd_recalibrate),
    "combine": ("several models as one .keras model averaging their probabilities", cmd_combine),
    "report": ("a data report: class counts, sample grids, duplicates within and across splits", cmd_report),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from train.console import quiet_tensorflow

    quiet_tensorflow()
    from train.errors import TrainError

    if argv[:1] in (["-h"], ["--help"]):
        commands_parser("fer-train", DESCRIPTION, {name: text for name, (text, _) in COMMANDS.items()},
                        default="train").parse_args(argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "train"
    try:
        return COMMANDS[command][1](argv)
    except TrainError as exc:
        print(f"fer-train: error: {exc}", file=sys.stderr)
        return ExitStatus.BAD_INPUT
    except OSError as exc:  # a path that cannot be read or written (an --out that is a file, a full disk)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fer-train: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print("fer-train: interrupted (checkpoints so far are kept; continue with --resume)", file=sys.stderr)
        return ExitStatus.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
