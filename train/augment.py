"""Augmentation on the TensorFlow graph, applied in the input pipeline and never exported.

FER2013 is small and noisy; the models overfit without flips, shifts, small rotations and zoom,
photometric jitter, and random erasing (which stands in for hands, glasses and hair over faces).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from train.config import AugmentConfig


def random_erasing(tf: Any, images: Any, probability: float, seed: int) -> Any:
    """Erase one rectangle (2-30% of the area, aspect 0.3-3.3) per image with ``probability``."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    fheight, fwidth = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    area = tf.random.uniform([batch], 0.02, 0.3) * fheight * fwidth
    log_ratio = tf.random.uniform([batch], math.log(0.3), math.log(1 / 0.3))
    ratio = tf.exp(log_ratio)
    eh = tf.clip_by_value(tf.sqrt(area * ratio), 1.0, fheight)
    ew = tf.clip_by_value(tf.sqrt(area / ratio), 1.0, fwidth)
    y0 = tf.random.uniform([batch]) * (fheight - eh)
    x0 = tf.random.uniform([batch]) * (fwidth - ew)
    ys = tf.reshape(tf.range(fheight), [1, -1, 1])
    xs = tf.reshape(tf.range(fwidth), [1, 1, -1])
    inside = (
        (ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
        & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None])
    )
    apply = tf.random.uniform([batch]) < probability
    mask = tf.logical_and(inside, apply[:, None, None])[..., None]
    noise = tf.random.uniform(tf.shape(images), 0.0, 255.0)
    return tf.where(mask, noise, images)


def make_augmenter(config: AugmentConfig, seed: int) -> Callable[[Any], Any]:
    """A function from a float batch of raw pixels (B, 48, 48, 1) to an augmented batch."""
    import keras
    import tensorflow as tf

    layers: list[Any] = []
    if config.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if config.rotation_deg > 0:
        layers.append(keras.layers.RandomRotation(config.rotation_deg / 360.0, fill_mode="reflect", seed=seed + 1))
    if config.zoom > 0:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed + 2))
    if config.shift > 0:
        layers.append(keras.layers.RandomTranslation(config.shift, config.shift, fill_mode="reflect", seed=seed + 3))
    if config.brightness > 0:
        layers.append(keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed + 4))
    if config.contrast > 0:
        layers.append(keras.layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed + 5))
    pipeline = keras.Sequential(layers, name="augment") if layers else None

    def augment(images: Any) -> Any:
        if pipeline is not None:
            images = tf.cast(pipeline(images, training=True), tf.float32)
        if config.erasing > 0:
            images = random_erasing(tf, images, config.erasing, seed)
        return tf.clip_by_value(images, 0.0, 255.0)

    return augment


def make_mixer(alpha: float, num_classes: int) -> Callable[..., tuple[Any, ...]]:
    """Mixup for consistent teaching: (images, labels[, weights]) -> (blends, label blends[, weights]).

    Each face is blended with another face of its batch, in a share drawn from Beta(alpha, alpha) per
    face; its one-hot label and its class weight are blended in the same share. The teachers then judge
    the blend itself (train.distill.consistent_targets), so the student learns to match the teachers'
    function between faces too, not only on them: Beyer et al.'s "function matching".
    """
    import tensorflow as tf

    def mix(images: Any, labels: Any, *weights: Any) -> tuple[Any, ...]:
        batch = tf.shape(images)[0]
        first = tf.random.gamma([batch], alpha)
        share = first / (first + tf.random.gamma([batch], alpha))
        partner = tf.random.shuffle(tf.range(batch))
        if labels.shape.rank == 2:  # rows of class shares already (a label mixed with FER+ votes)
            onehot = tf.cast(labels, tf.float32)
        else:
            onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)

        def blend(values: Any, shares: Any) -> Any:
            return shares * values + (1.0 - shares) * tf.gather(values, partner)

        mixed = (blend(images, share[:, None, None, None]), blend(onehot, share[:, None]))
        return mixed + tuple(blend(tf.cast(w, tf.float32), share) for w in weights)

    return mix
