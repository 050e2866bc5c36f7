"""Sign-in for the chat UI against the same `users` table as the HTTP API.

`mixpilot ui --login` turns it on; without it the UI runs in local single-user mode as
`memory.db.LOCAL_USER_ID`. Passwords are checked with the API's own `verify_password` when the
API package is installed, else with pwdlib's recommended hasher (Argon2, the API's format). An
unknown email still costs one hash verification (no timing hint), and every failure looks the same.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable

from memory.bridge import run_sync

# where the API keeps its password helpers (first found wins)
_SECURITY_MODULES = ("app.api.security", "app.api.core.security", "app.core.security", "app.api.auth")
_DUMMY_PASSWORD = "mixpilot-dummy-password"


def password_verifier() -> Callable[[str, str], bool]:
    """`verify(password, hash) -> bool` from the API, or pwdlib's recommended hasher."""
    for name in _SECURITY_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        fn = getattr(mod, "verify_password", None)
        if callable(fn):
            return fn
    try:
        from pwdlib import PasswordHash
    except ImportError as exc:
        raise RuntimeError(
            "sign-in needs the API's password hashing: pip install -e '.[api]' (pwdlib)"
        ) from exc
    hasher = PasswordHash.recommended()

    def verify(password: str, hashed: str) -> bool:
        try:
            return bool(hasher.verify(password, hashed))
        except Exception:  # malformed or empty hash
            return False

    return verify


def _dummy_hash() -> str:
    try:
        from app.api.security import dummy_hash

        return dummy_hash()
    except Exception:
        pass
    try:
        from pwdlib import PasswordHash

        return PasswordHash.recommended().hash(_DUMMY_PASSWORD)
    except Exception:
        return ""


class SignIn:
    """Gradio `auth=` check (`SignIn.check`) plus email → user id for the handlers."""

    def __init__(self, database_url: str, *, verify: Callable[[str, str], bool] | None = None) -> None:
        self.database_url = database_url
        self.verify = verify or password_verifier()
        self._dummy = _dummy_hash()
        self._ids: dict[str, str] = {}

    async def _user(self, email: str):
        from memory.db import get_user_by_email, make_engine, make_sessionmaker

        engine = make_engine(self.database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await get_user_by_email(session, email=email)
        finally:
            await engine.dispose()

    async def check(self, username: str, password: str) -> bool:
        """Gradio's `auth=`: pass this bound coroutine function itself (Gradio awaits it only when
        `inspect.iscoroutinefunction(auth)`; an instance with an async `__call__` would let anyone in)."""
        email = (username or "").strip().lower()
        user = await self._user(email) if email else None
        if user is None or not user.is_active or not user.password_hash:
            await asyncio.to_thread(self.verify, password or "", self._dummy)  # same work as a real check
            return False
        if not await asyncio.to_thread(self.verify, password or "", user.password_hash):
            return False
        self._ids[email] = user.id
        return True

    def user_id(self, username: str | None) -> str | None:
        """The signed-in user's id (looked up again after a server restart kept the cookie)."""
        email = (username or "").strip().lower()
        if not email:
            return None
        if email not in self._ids:
            user = run_sync(self._user(email))
            if user is None or not user.is_active:
                return None
            self._ids[email] = user.id
        return self._ids[email]
