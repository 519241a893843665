"""What LLM tokens cost, so usage can be turned into dollars and held under a budget."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from pepite_llm.errors import LlmConfigError

_PER_MILLION = 1_000_000


class ModelPrice(BaseModel):
    """List price of one model, in US dollars per million tokens."""

    model_config = ConfigDict(frozen=True)

    input_per_mtok: float = Field(ge=0.0)
    output_per_mtok: float = Field(ge=0.0)

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollars charged for one call's tokens."""
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / _PER_MILLION


def default_prices() -> dict[str, ModelPrice]:
    """OpenAI's standard-tier list prices of the models worth using for labeling.

    Cached-input discounts are left out on purpose: budgets then err on the safe side.
    """
    return {
        "gpt-4o-mini": ModelPrice(input_per_mtok=0.15, output_per_mtok=0.60),
        "gpt-4o": ModelPrice(input_per_mtok=2.50, output_per_mtok=10.00),
        "gpt-4.1-nano": ModelPrice(input_per_mtok=0.10, output_per_mtok=0.40),
        "gpt-4.1-mini": ModelPrice(input_per_mtok=0.40, output_per_mtok=1.60),
        "gpt-4.1": ModelPrice(input_per_mtok=2.00, output_per_mtok=8.00),
    }


def model_price(prices: Mapping[str, ModelPrice], model: str) -> ModelPrice:
    """The price of ``model``: a budget cannot be held without one.

    Raises:
        LlmConfigError: the model is not priced.
    """
    price = prices.get(model)
    if price is None:
        raise LlmConfigError(
            f"no price for model {model!r}: add it to PEPITE_LLM_PRICES "
            '(JSON: {"<model>": {"input_per_mtok": ..., "output_per_mtok": ...}})'
        )
    return price
