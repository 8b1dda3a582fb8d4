"""The LLM layer: per-task models over litellm, an offline default provider, a prompt registry,
a cost ledger (``ops.llm_calls``) and a grounding check. litellm is imported on first use. Which model writes
what: ``config/llm.yaml`` (``mos_pipelines.configuration.load_llm``)."""

from mos_pipelines.llm.client import LLM, Generation
from mos_pipelines.llm.grounding import GroundingResult, check_grounding
from mos_pipelines.llm.ledger import Ledger
from mos_pipelines.llm.prompts import PROMPTS, Prompt, get_prompt

__all__ = [
    "LLM",
    "Generation",
    "GroundingResult",
    "check_grounding",
    "Ledger",
    "PROMPTS",
    "Prompt",
    "get_prompt",
]
