"""The images a run trains and validates on, drawn from its config the same way every time.

Training, evaluation (``--split val``) and recalibration all redraw the split here, so none of
them needs the others.
"""

from __future__ import annotations

import numpy as np

from train.config import Config
from train.data import Dataset, load_dataset, stratified_split


def split_seed(config: Config) -> int:
    """The seed that draws the validation split: data.val_seed, or train.seed when that is -1."""
    return config.train.seed if config.data.val_seed < 0 else config.data.val_seed


def prepare_data(config: Config, training: bool = True) -> tuple[Dataset, Dataset]:
    """The run's (training, validation) images; ``training=False`` keeps the images FER+ votes call
    not a face in the training part, as the pool was split (what a scorer compares test faces with)."""
    from train.run_info import load_options

    full = load_dataset(config.data.dir, config.data.split, config.data.labels, **load_options(config.data))
    if config.data.votes:  # every image of the split matched before any is set aside
        from train.data_location import expand_path

        full = full.with_votes(expand_path(config.data.votes))  # a shipped config says $FERPLUS_DIR/train.csv
    seed = split_seed(config)
    if config.data.limit and config.data.limit < len(full):
        rng = np.random.default_rng(seed)
        full = full.subset(np.sort(rng.choice(len(full), config.data.limit, replace=False)))
    train_index, val_index = stratified_split(full.targets, config.data.val_fraction, seed)
    train, val = full.subset(train_index), full.subset(val_index)
    if train.votes is not None and training:
        train = _without_non_faces(train)
    return train, val


def _without_non_faces(data: Dataset) -> Dataset:
    """Training images less those FER+'s majority calls not a face, their count kept in ``info``.

    Only training loses them: the validation split stays the one the run's seed draws from all
    images, so its figures compare with runs that never saw the votes.
    """
    import dataclasses

    from train.ferplus import not_a_face

    assert data.votes is not None
    faces = ~not_a_face(data.votes)
    kept = data.subset(np.flatnonzero(faces))
    votes = {**dict(data.info.get("votes", {})), "not_a_face_left_out": int((~faces).sum())}
    return dataclasses.replace(kept, info={**data.info, "votes": votes})


def soft_targets(config: Config) -> bool:
    """Whether the run learns from probability vectors (teachers, or votes mixed in) not integer labels."""
    return bool(config.train.teacher) or (bool(config.data.votes) and config.train.votes_mix > 0)
