"""The pieces of the OpenAI-compatible analyzer: prompt, output schema, prices, calls."""
