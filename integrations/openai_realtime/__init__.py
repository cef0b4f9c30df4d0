"""OpenAI Realtime API integration: a local protocol simulator and (later) adapters."""
