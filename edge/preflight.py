"""Everything ``run`` would refuse, found before it starts or before a reload replaces a config.

``validate-config`` is install.sh's check before it switches releases and the one users run
before ``systemctl reload``, so it has to catch what would stop the daemon: a model file that does
not match its manifest, labels that do not fit the model, a cascade OpenCV cannot load, a BlazeFace
model that does not match its sha256 or shape, a source it cannot build, MQTT without its client. The camera itself is not opened: a running daemon holds it.
"""

from __future__ import annotations

from edge.config import EdgeConfig
from edge.vision.manifest import Manifest


def preflight(config: EdgeConfig) -> Manifest:
    """The config's manifest, once everything the daemon needs has been loaded once; EdgeError if not."""
    from edge.vision.classifier import Classifier
    from edge.vision.faces import build_detector
    from edge.vision.sources import source_from_config

    build_detector(config.detector)  # a BlazeFace model is checked against its .sha256 and run once
    with Classifier(config.model.manifest, config.model.artifact, threads=1) as classifier:
        manifest = classifier.manifest
    source_from_config(config).close()
    if config.mqtt.enabled:
        from edge.service.mqtt import require_paho

        require_paho()
    return manifest
