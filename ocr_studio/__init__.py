"""OCR Studio: a local, GPU-powered document OCR studio."""

__version__ = "0.1.0"
