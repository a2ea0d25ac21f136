"""``fer-edge analyze``: a video or folder in, per-frame and per-track tables, an annotated clip, a
timeline chart and a summary out. Each job is its own module so the daemon's live view and the docs
images draw with the same code."""
