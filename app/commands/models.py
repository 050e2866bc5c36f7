"""`mixpilot models list|pull NAME|all|verify`: the neural weights mixpilot can use, fetched only when asked.

``list`` says, for each model, what it enables, its size and licence, where it comes from (the
mirror when one is set) and whether it is installed (and where). ``pull`` downloads, checks and
installs one model (``all``: the ones the tools use by default) into the models dir
(``MIXPILOT_MODELS_DIR``, default ``<data dir>/models``). ``verify`` re-checks the installed files.
Nothing is downloaded by any other command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.weights import WeightSources


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models", help="list, download (pull) and verify the neural model weights (Demucs, Vocos)"
    )
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = msub.add_parser("list", help="each model: what it enables, size, licence, source, installed or not")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    pull = msub.add_parser(
        "pull", help="download, check and install a model (NAME, or 'all' for the defaults)"
    )
    pull.add_argument("name", help="model name (see `mixpilot models list`) or 'all'")
    pull.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    pull.add_argument(
        "--no-wait",
        action="store_true",
        help="when another pull of the same model is running, stop at once instead of waiting for it",
    )
    ver = msub.add_parser("verify", help="re-check the checksums of the installed models")
    ver.add_argument("name", nargs="?", default=None, help="one model (default: every installed one)")
    ver.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run, models_command=None)


def run(args: argparse.Namespace) -> int:
    from app.errors import CliError
    from app.settings import Settings
    from models.weights import ModelLoadingError

    repo = Settings().weight_sources()
    action = args.models_command or "list"
    try:
        if action == "list":
            return _list(repo, as_json=getattr(args, "json", False))
        if action == "pull":
            return _pull(repo, args.name, quiet=args.quiet, wait=not args.no_wait)
        return _verify(repo, args.name, as_json=args.json)
    except ModelLoadingError as exc:
        raise CliError(str(exc)) from None


def describe(repo: WeightSources) -> list[dict[str, Any]]:
    """Every catalogue model as a JSON-able dict (``list`` and ``GET /api/v1/models`` share it)."""
    from models.hub import source_of

    out = []
    for state in repo.list_models():
        d = state.to_dict()
        if state.card is not None:
            d["source"] = source_of(repo, state.card)
        d["pull"] = f"mixpilot models pull {state.name}"
        out.append(d)
    return out


def _list(repo: WeightSources, *, as_json: bool) -> int:
    rows = describe(repo)
    if as_json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        state = f"installed: {r['path']}" if r["installed"] else f"not installed: {r['pull']}"
        optional = "" if r["default"] else ", optional"
        print(f"{r['name']}  ({r['size_mb']:.0f} MB, {r['licence']}{optional})  {state}")
        print(f"    enables  {r['enables']}")
        if not r["installed"]:
            print(f"    gains    {r['gain']}")
        print(f"    source   {r['source']}")
    print(f"models dir: {repo.models_dir}" + (f"; mirror: {repo.mirror}" if repo.mirror else ""))
    return 0


def _pull(repo: WeightSources, name: str, *, quiet: bool, wait: bool = True) -> int:
    from models.hub import pull, source_of

    names = [n for n, c in repo.catalogue().items() if c.default] if name == "all" else [repo.card(name).name]
    for n in names:
        card = repo.card(n)
        print(f"{n}: {card.size_mb:.0f} MB from {source_of(repo, card)}", file=sys.stderr)
        state = pull(
            repo, n, progress=not quiet, wait_s=None if wait else 0, log=lambda s: print(s, file=sys.stderr)
        )
        print(f"{n}: installed in {state.path} ({card.enables})")
    return 0


def _verify(repo: WeightSources, name: str | None, *, as_json: bool) -> int:
    from models.weights import ModelLoadingError

    names = [repo.card(name).name] if name else [s.name for s in repo.list_models() if s.installed]
    results = []
    for n in names:
        try:
            state = repo.verify(n)
            results.append({"name": n, "ok": True, "path": str(state.path), "detail": "checksums match"})
        except ModelLoadingError as exc:
            results.append({"name": n, "ok": False, "path": None, "detail": str(exc)})
    if as_json:
        print(json.dumps(results))
    elif not results:
        print("no models installed (see `mixpilot models list`)")
    for r in results if not as_json else []:
        print(f"{r['name']}: {'ok' if r['ok'] else 'FAILED'}: {r['detail']}")
    return 0 if all(r["ok"] for r in results) else 1
