"""Message analysis: one interface, a local (offline) and an OpenAI-compatible analyzer."""
