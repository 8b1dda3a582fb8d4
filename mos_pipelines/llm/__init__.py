"""The LLM layer: per-task models over litellm, an offline default provider, a prompt registry,
a cost ledger (``ops.llm_calls``) and a grounding check. litellm is imported on first use."""

from mos_pipelines.llm.client import LLM, Generation
from mos_pipelines.llm.config import LLMConfig, LLMConfigError, TaskModels, load_config
from mos_pipelines.llm.grounding import GroundingResult, check_grounding
from mos_pipelines.llm.ledger import Ledger
from mos_pipelines.llm.prompts import PROMPTS, Prompt, get_prompt

__all__ = [
    "LLM", "Generation", "LLMConfig", "LLMConfigError", "TaskModels", "load_config", "GroundingResult",
    "check_grounding", "Ledger", "PROMPTS", "Prompt", "get_prompt",
]
