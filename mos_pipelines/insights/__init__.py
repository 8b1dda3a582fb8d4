"""Insights Hub: candidate insights from the marts through the semantic layer's metric definitions,
tested and selected (Benjamini–Hochberg, significance, materiality), phrased by the LLM layer with a
grounding check, ranked into notifications per reader with feedback, and rendered as a report."""
