"""federica: controller for a federated, slice-based network research facility."""

__version__ = "0.1.0"
