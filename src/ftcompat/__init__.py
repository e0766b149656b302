"""ftcompat: a compatibility matrix for the Hugging Face fine-tuning stack."""

__version__ = "0.1.0"
