"""The web app: Gradio chat and admin pages, sign-in, the document viewer and the HTTP API, inside FastAPI."""
