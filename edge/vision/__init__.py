"""The frame path: sources, face detection, the classifier and its runtimes, the manifest, tracking."""
