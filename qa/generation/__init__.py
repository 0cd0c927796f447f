"""Optional grounded generation: a model server writes the answer from the top passages, and
every sentence is checked against the passages it cites (a shell over ``QAService.ask``)."""

from qa.generation.client import ChatClient, ModelServerError
from qa.generation.sources import CitedSource, extractive_sources
from qa.generation.verify import SupportParams
from qa.generation.writer import Generated, Writer

__all__ = [
    "ChatClient",
    "CitedSource",
    "Generated",
    "ModelServerError",
    "SupportParams",
    "Writer",
    "extractive_sources",
]
