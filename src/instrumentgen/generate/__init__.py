"""Generation: decoding codes from a trained codec LM (AR with a KV cache; MAGNeT iterative)."""
