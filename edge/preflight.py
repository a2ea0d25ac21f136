"""Everything ``run`` would refuse, found before it starts or before a reload replaces a config.

``validate-config`` is install.sh's check before it switches releases and the one users run
before ``systemctl reload``, so it has to catch what would stop the daemon: a model file that does
not match its manifest, labels that do not fit the model, a cascade OpenCV cannot load, a BlazeFace
model that does not match its sha256 or shape, a source it cannot build, a video or image source that
does not decode, an HTTP port another program holds, MQTT without its client. A camera is not opened:
a running daemon holds it.
"""

from __future__ import annotations

from edge.config import EdgeConfig
from edge.errors import SourceError
from edge.vision.manifest import Manifest


def preflight(config: EdgeConfig, check_http: bool = True) -> Manifest:
    """The config's manifest, once everything the daemon needs has been loaded once; EdgeError if not.

    ``check_http=False`` skips the port check, for a reload: the running daemon binds the new
    server itself before it lets the old one go.
    """
    from edge.vision.classifier import Classifier
    from edge.vision.detectors import build_detector

    build_detector(config.detector)  # a BlazeFace model is checked against its .sha256 and run once
    with Classifier(config.model.manifest, config.model.artifact, threads=1) as classifier:
        manifest = classifier.manifest
    check_source(config)
    if config.mqtt.enabled:
        from edge.service.mqtt import require_paho

        require_paho()
    if check_http and config.http.enabled:
        from edge.service.status_server import check_listen_address

        check_listen_address(config.http.host, config.http.port)
    return manifest


def check_source(config: EdgeConfig) -> None:
    """Build the source; a file (video or images) is opened and its first frame decoded, since
    a corrupt or truncated one would stop ``run``. Cameras and streams are only built."""
    from edge.vision.sources import source_from_config
    from edge.vision.sources.opencv import OpenCVSource

    source = source_from_config(config)
    if source.live:
        source.close()
        return
    with source:
        if source.read() is None:
            kind = "video" if isinstance(source, OpenCVSource) else "image"
            raise SourceError(f"cannot decode {kind} source {source.description}: not one frame")
