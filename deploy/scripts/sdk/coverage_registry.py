"""Which supabase-py client methods the suite exercised, and what each answered.

The public methods of `SyncGoTrueClient` (and so of supabase's `SyncSupabaseAuthClient`, its
subclass), of `SyncGoTrueAdminAPI`, and the `mfa` / `admin.mfa` / `admin.oauth` methods the
clients bind from private ones at construction, are wrapped once (`install()`, before any client
exists). Every outermost call a test makes is recorded with its outcome: `ok`, or the exception
class with `.status` and `.code`. Calls a method makes internally (`sign_out` calling
`get_session` and `admin.sign_out`) are not counted: the registry says what the tests called.

A test's calls count as covered only when the test passed; the calls of failed tests are listed
apart. `summary_lines()` is what the pytest `terminal_summary` hook prints.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict

from supabase_auth import SyncGoTrueClient
from supabase_auth._sync.gotrue_admin_api import SyncGoTrueAdminAPI

# Private methods that the clients bind to a public name in __init__ (self.mfa.enroll =
# self._enroll, …): wrapping the function on the class before a client exists wraps the name.
_BOUND_PRIVATE = {
    SyncGoTrueClient: {
        "_enroll": "mfa.enroll",
        "_challenge": "mfa.challenge",
        "_challenge_and_verify": "mfa.challenge_and_verify",
        "_verify": "mfa.verify",
        "_unenroll": "mfa.unenroll",
        "_list_factors": "mfa.list_factors",
        "_get_authenticator_assurance_level": "mfa.get_authenticator_assurance_level",
    },
    SyncGoTrueAdminAPI: {
        "_list_factors": "admin.mfa.list_factors",
        "_delete_factor": "admin.mfa.delete_factor",
        "_list_oauth_clients": "admin.oauth.list_clients",
        "_create_oauth_client": "admin.oauth.create_client",
        "_get_oauth_client": "admin.oauth.get_client",
        "_update_oauth_client": "admin.oauth.update_client",
        "_delete_oauth_client": "admin.oauth.delete_client",
        "_regenerate_oauth_client_secret": "admin.oauth.regenerate_client_secret",
    },
}
# Public names that are not client calls to the server or that only manage the object.
_NOT_METHODS = {"close"}

_state = threading.local()
_lock = threading.Lock()
_current: list[tuple[str, str]] | None = None
_known: set[str] = set()
covered: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
in_failed_tests: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
_installed = False


def outcome_of(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    status = getattr(error, "status", None)
    code = getattr(error, "code", None)
    parts = [type(error).__name__]
    if status is not None:
        parts.append(str(status))
    if code is not None:
        parts.append(str(code))
    return " ".join(parts)


def record(name: str, outcome: str) -> None:
    with _lock:
        if _current is not None:
            _current.append((name, outcome))


def _wrap(name: str, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        depth = getattr(_state, "depth", 0)
        _state.depth = depth + 1
        try:
            result = function(*args, **kwargs)
        except BaseException as error:
            if depth == 0:
                record(name, outcome_of(error))
            raise
        finally:
            _state.depth = depth
        if depth == 0:
            record(name, "ok")
        return result

    wrapper.__sdk_covered__ = name
    return wrapper


def wrap_function(name: str, function):
    """A module-level function (supabase.create_client) recorded under `name`."""
    _known.add(name)
    return _wrap(name, function)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for cls, prefix in ((SyncGoTrueClient, ""), (SyncGoTrueAdminAPI, "admin.")):
        private = _BOUND_PRIVATE[cls]
        for attribute, value in list(vars(cls).items()):
            if not callable(value) or isinstance(value, (staticmethod, classmethod, type)):
                continue
            if attribute in private:
                name = private[attribute]
            elif attribute.startswith("_") or attribute in _NOT_METHODS:
                continue
            else:
                name = prefix + attribute
            if getattr(value, "__sdk_covered__", None):
                continue
            _known.add(name)
            setattr(cls, attribute, _wrap(name, value))


def begin_test() -> None:
    global _current
    with _lock:
        _current = []


def end_test(passed: bool) -> None:
    global _current
    with _lock:
        calls, _current = _current or [], None
    target = covered if passed else in_failed_tests
    for name, outcome in calls:
        target[name][outcome] += 1


def summary_lines() -> list[str]:
    lines = []
    width = max((len(name) for name in _known), default=20) + 2
    lines.append(f"{'method':<{width}} calls  answers seen (by passing tests)")
    for name in sorted(covered):
        outcomes = covered[name]
        total = sum(outcomes.values())
        seen = ", ".join(f"{outcome} ×{count}" if count > 1 else outcome for outcome, count in sorted(outcomes.items()))
        lines.append(f"{name:<{width}} {total:>5}  {seen}")
    only_failed = sorted(set(in_failed_tests) - set(covered))
    if only_failed:
        lines.append("")
        lines.append("called only by failing tests: " + ", ".join(only_failed))
    missing = sorted(_known - set(covered) - set(in_failed_tests))
    lines.append("")
    lines.append(f"{len(covered)} of {len(_known)} client methods exercised by passing tests")
    if missing:
        lines.append("not exercised: " + ", ".join(missing))
    return lines
