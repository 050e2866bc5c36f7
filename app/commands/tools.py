"""`mixpilot tools [--json]`: every canonical tool, what it does, its params and whether it can run here."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tools", help="list the audio tools, their parameters and availability")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def _bounds(spec: dict) -> str:
    lo = spec.get("minimum", spec.get("exclusiveMinimum"))
    hi = spec.get("maximum", spec.get("exclusiveMaximum"))
    parts = []
    if "enum" in spec:
        parts.append("|".join(str(e) for e in spec["enum"]))
    elif lo is not None or hi is not None:
        parts.append(f"{'' if lo is None else lo}..{'' if hi is None else hi}")
    if "default" in spec:
        parts.append(f"default {spec['default']}")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from app.runtime import use_weights
    from app.settings import Settings
    from tools.registry import default_registry

    use_weights(Settings())  # the tools' availability reflects the installed model weights
    reg = default_registry()
    described = [reg[name].describe() for name in reg]
    models = _models_by_tool()
    for d in described:
        if d["name"] in models:
            d["models"] = models[d["name"]]
    if args.json:
        print(json.dumps(described, indent=None))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    table.add_column("tool", style="bold")
    table.add_column("what it does")
    table.add_column("params")
    table.add_column("available")
    for d in described:
        params = "\n".join(f"{k} ({_bounds(v)})" if _bounds(v) else k for k, v in d["params"].items())
        avail = "yes" if d["available"] else f"no: {d['reason']}"
        missing = [m for m in d.get("models", []) if m["default"] and not m["installed"]]
        if d["available"] and missing:
            m = missing[0]
            avail = f"yes, fallback only: {m['name']} not installed (`{m['pull']}`, {m['size_mb']:.0f} MB)"
        table.add_row(d["name"], d["description"], params, avail)
    Console(soft_wrap=False).print(table)
    return 0


def _models_by_tool() -> dict[str, list[dict[str, object]]]:
    """tool → the neural models it uses: name, installed, path, what a pull costs (`mixpilot models list`)."""
    from models.weights import current_sources

    out: dict[str, list[dict[str, object]]] = {}
    for state in current_sources().list_models():
        if state.card is None:
            continue
        out.setdefault(state.card.tool, []).append(
            {
                "name": state.name,
                "installed": state.installed,
                "path": str(state.path) if state.path else None,
                "default": state.card.default,
                "size_mb": state.card.size_mb,
                "pull": f"mixpilot models pull {state.name}",
            }
        )
    return out
