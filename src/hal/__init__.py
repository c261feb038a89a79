"""HAL widget identification: identify, CRM writes and the support inbox as one service."""

__version__ = "0.1.0"
