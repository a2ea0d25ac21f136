"""The daemon and its outputs: the run loop, event log, MQTT, metrics, status server, systemd."""
