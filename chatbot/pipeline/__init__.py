"""The LangChain answer pipeline: understand → retrieve → answer → (the service logs the turn)."""
