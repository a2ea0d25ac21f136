"""Exact and near duplicates among 48x48 faces, fast enough for all of FER2013 (~36k images).

Exact duplicates share the sha256 of their pixels. Near duplicates are pairs whose 64-bit
difference hashes (dHash on a 9x8 thumbnail) differ in at most ``d`` bits: re-encoded,
slightly shifted or re-lit copies of one photo. Comparing every pair would be 600M Hamming
distances; instead the hash is cut into ``d + 1`` chunks. Two hashes within distance ``d``
agree exactly on at least one chunk (pigeonhole), so only hashes sharing a chunk value are
compared, with sorting and vectorised numpy instead of a Python loop over pairs.
"""

from __future__ import annotations

import hashlib

import numpy as np


def pixel_digests(images: np.ndarray) -> np.ndarray:
    """sha256 of each image's pixels, as an (N,) array of 32-byte strings."""
    return np.array([hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest() for image in images],
                    dtype="S32")


def dhash(images: np.ndarray) -> np.ndarray:
    """64-bit difference hash per image: is each pixel of a 9x8 thumbnail brighter than its right neighbour."""
    import cv2

    small = np.stack([cv2.resize(image, (9, 8), interpolation=cv2.INTER_AREA) for image in images]).astype(np.int16)
    bits = (small[:, :, 1:] > small[:, :, :-1]).reshape(len(images), 64)
    packed = np.packbits(bits, axis=1)  # (N, 8) bytes, most significant first
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def popcount(values: np.ndarray) -> np.ndarray:
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values).astype(np.int64)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return table[values.view(np.uint8).reshape(-1, 8)].sum(axis=1)


def near_pairs(hashes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) with Hamming distance <= ``max_distance``, each once."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    chunks = max(1, min(64, max_distance + 1))
    bounds = np.linspace(0, 64, chunks + 1).round().astype(int)
    found: list[np.ndarray] = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        mask = np.uint64((1 << int(stop - start)) - 1)
        keys = (hashes >> np.uint64(start)) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        offset = 1
        while offset < n:
            same = sorted_keys[:-offset] == sorted_keys[offset:]
            if not same.any():
                break  # no run of equal keys is longer than ``offset``
            a, b = order[:-offset][same], order[offset:][same]
            close = popcount(hashes[a] ^ hashes[b]) <= max_distance
            lo, hi = np.minimum(a[close], b[close]), np.maximum(a[close], b[close])
            found.append(lo.astype(np.int64) * n + hi)
            offset += 1
    if not found:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    codes = np.unique(np.concatenate(found))
    return codes // n, codes % n


def exact_groups(digests: np.ndarray) -> np.ndarray:
    """A group id per image: images with equal digests share one."""
    _, group = np.unique(digests, return_inverse=True)
    return group.reshape(-1)


def duplicates_of(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which of ``images`` are pixel for pixel one of ``reference`` (test faces that are training faces)."""
    return np.isin(pixel_digests(images), pixel_digests(reference))
