"""Language models: the built-in local weights and the LangChain chat model that serves them.

Submodules are imported explicitly (``chatbot.models.local_weights``,
``chatbot.models.local_chat``) so importing this package never pulls in torch.
"""
