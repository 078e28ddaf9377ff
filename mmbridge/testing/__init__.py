"""Test doubles shipped as public API: an OpenAI-compatible loopback server with fault injection."""

from .openai_server import Fault, FaultMix, OpenAICompatibleServer, RecordedRequest, default_responder

__all__ = ["Fault", "FaultMix", "OpenAICompatibleServer", "RecordedRequest", "default_responder"]
