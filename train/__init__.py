"""Training for fer-edge: FER2013 loading, augmentation, models, fit and evaluate."""

__version__ = "0.1.0"
