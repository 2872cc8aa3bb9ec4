"""The store: chunk vectors (through LlamaIndex) and the keyword catalog beside them."""
