"""Maintainer tools that are not part of any installed package: docs images, browser checks."""
