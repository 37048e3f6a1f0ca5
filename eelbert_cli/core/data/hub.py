"""Reaching the Hugging Face hub: when it cannot be reached, fail in seconds with the offline
alternatives, instead of after the hub libraries' retries (~30 s per name)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

PROBE_SECONDS = 3.0
_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def hub_unreachable_reason(timeout: float = PROBE_SECONDS) -> str | None:
    """None when the hub answers (or offline mode asks the libraries to use their cache), else why not."""
    if any(os.environ.get(flag, "").lower() in ("1", "true", "yes") for flag in _OFFLINE_FLAGS):
        return None
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"ConnectionError: {host}:{port} is unreachable from this machine ({error.strerror or error})"
    return None
