"""The offline default provider, ``mos-offline/<name>``: a litellm custom provider that writes the
prompt's template from the facts. Deterministic, free, and it never opens a socket."""

from __future__ import annotations

import time
from typing import Any

from mos_pipelines.llm.prompts import get_prompt, prompt_of_messages

PROVIDER = "mos-offline"
_registered = False


def is_offline(model: str) -> bool:
    return model.split("/", 1)[0] == PROVIDER


def register(litellm: Any) -> None:
    """Add the provider to litellm's ``custom_provider_map`` (once per process)."""
    global _registered
    if _registered:
        return
    from litellm.types.utils import Choices, Message, ModelResponse, Usage

    class OfflineTemplateLLM(litellm.CustomLLM):
        """Renders the template of the prompt (and version) named in the messages, from the facts they carry."""

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            prompt_id, version, facts = prompt_of_messages(messages)
            text = get_prompt(prompt_id, version).render(facts)
            prompt_tokens = litellm.token_counter(model=model, messages=messages)
            completion_tokens = litellm.token_counter(model=model, text=text)
            return ModelResponse(
                model=f"{PROVIDER}/{model.split('/', 1)[-1]}",
                created=int(time.time()),
                choices=[Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=text))],
                usage=Usage(
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    total_tokens=prompt_tokens + completion_tokens,
                ),
            )

    providers = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != PROVIDER]
    litellm.custom_provider_map = [*providers, {"provider": PROVIDER, "custom_handler": OfflineTemplateLLM()}]
    _registered = True
