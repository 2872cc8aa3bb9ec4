"""Web entry points: the FastAPI app, the Gradio UI and the widget."""
