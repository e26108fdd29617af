"""SecureChat: a self-hosted, end-to-end encrypted messenger."""

__version__ = "0.1.0"
