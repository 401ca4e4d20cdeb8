"""The generative language-model stage (optional): interest summaries, explanations and item copy
written by a local GGUF model or an OpenAI-compatible server, checked against their evidence, with
liverec's templates as the fallback. See ``docs/generation.md``."""

from liverec.generation.base import GenerationError, GenerationTimeout, Generator, Message, collect, open_generator
from liverec.generation.guard import Breaker, Rejected, check
from liverec.generation.stage import GenerationSettings, Narrator, Text

__all__ = ["Breaker", "GenerationError", "GenerationSettings", "GenerationTimeout", "Generator", "Message",
           "Narrator", "Rejected", "Text", "check", "collect", "open_generator"]
