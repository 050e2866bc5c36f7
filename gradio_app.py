"""mixpilot chat UI (Gradio). Run `python gradio_app.py` or `mixpilot ui`.

The app itself lives in `app/ui/` (so the installed `mixpilot ui` command finds it); this file is
the conventional entry point: `python gradio_app.py [--host 127.0.0.1] [--port 7860]`.
"""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(["ui", *sys.argv[1:]]))
