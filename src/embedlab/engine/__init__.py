"""The engine: tokenising with a long-input policy, token-budget batching, and the Embedder."""
