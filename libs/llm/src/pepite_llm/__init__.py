"""Calls to an OpenAI-compatible chat-completions API: retries, errors, prices."""
