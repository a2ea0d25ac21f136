"""Getting onto a Pi: the bundle, SD-card first boot, SSH deploy, install.sh and the unit."""
