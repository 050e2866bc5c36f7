"""The Gradio chat UI (gradio_app.py at the repo root starts it; `mixpilot ui` too)."""
