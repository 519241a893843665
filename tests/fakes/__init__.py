"""Fakes of what lies outside Pépite (an LLM server), for tests and benchmarks."""
