"""Which supabase-py client methods the suite exercised, and what each answered.

The public methods of `SyncGoTrueClient` (and so of supabase's `SyncSupabaseAuthClient`, its
subclass), of `SyncGoTrueAdminAPI`, and the `mfa` / `admin.mfa` / `admin.oauth` methods the
clients bind from private ones at construction, are wrapped once (`install()`, before any client
exists); so are storage3's bucket API (`SyncStorageBucketAPI`: `storage.list_buckets`, …) and
file API (`SyncBucketActionsMixin`, what `storage.from_(id)` returns: `storage.from_.upload`, …),
and the realtime client's API (`AsyncRealtimeClient` as `realtime.set_auth`, …, and
`AsyncRealtimeChannel` as `realtime.channel.subscribe`, …; async methods are recorded when
awaited). Every outermost call a test makes is recorded with its outcome: `ok`, or the exception class
with `.status` and `.code`. Calls a method makes internally (`sign_out` calling
`get_session` and `admin.sign_out`) are not counted: the registry says what the tests called.

A test's calls count as covered only when the test passed; the calls of failed tests are listed
apart. `summary_lines()` is what the pytest `terminal_summary` hook prints: the calls, then by
client library how many of its methods passing tests exercised, which not, and which the
platform does not build yet (`NOT_YET`: none today; not tested, so not counted as
unexercised).
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict

import contextlib
import contextvars
import inspect

from realtime._async.channel import AsyncRealtimeChannel
from realtime._async.client import AsyncRealtimeClient
from storage3._sync.bucket import SyncStorageBucketAPI
from storage3._sync.file_api import SyncBucketActionsMixin
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

# The wrapped classes and the prefix of their methods' names.
_CLASSES = (
    (SyncGoTrueClient, ""),
    (SyncGoTrueAdminAPI, "admin."),
    (SyncStorageBucketAPI, "storage."),
    (SyncBucketActionsMixin, "storage.from_."),
    (AsyncRealtimeClient, "realtime."),
    (AsyncRealtimeChannel, "realtime.channel."),
)

# The realtime client's API (its other public names are the client's own plumbing: listen,
# send, push, join, on_close, on_error, endpoint_url, is_*), async or not.
_ONLY = {
    AsyncRealtimeClient: {"connect", "close", "channel", "get_channels", "remove_channel", "remove_all_channels", "set_auth"},
    AsyncRealtimeChannel: {"subscribe", "unsubscribe", "on_broadcast", "on_postgres_changes", "on_system", "track", "untrack",
                           "presence_state", "on_presence_sync", "on_presence_join", "on_presence_leave", "send_broadcast", "http_send"},
}

# storage3 methods whose routes the platform does not build yet (README "SDK acceptance"): not
# tested, and shown as "not yet" rather than as unexercised. (Image transformations are not
# storage3 methods: `transform` options. TUS is tuspy's: test_resumable.py; the S3 endpoint
# boto3's: test_s3.py.)
NOT_YET: dict[str, str] = {}
NOT_YET_BEYOND_METHODS = "image transformations (`transform` options)"

# How deep in wrapped calls the current task is (a context variable: asyncio tasks interleave).
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("sdk_call_depth", default=0)
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


@contextlib.contextmanager
def _call(name: str):
    """One call of a wrapped method: recorded with its outcome when it is the outermost."""
    depth = _depth.get()
    token = _depth.set(depth + 1)
    try:
        yield
    except BaseException as error:
        if depth == 0:
            record(name, outcome_of(error))
        raise
    finally:
        _depth.reset(token)
    if depth == 0:
        record(name, "ok")


def _wrap(name: str, function):
    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            with _call(name):
                return await function(*args, **kwargs)
    else:
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with _call(name):
                return function(*args, **kwargs)

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
    for cls, prefix in _CLASSES:
        private = _BOUND_PRIVATE.get(cls, {})
        for attribute, value in list(vars(cls).items()):
            if not callable(value) or isinstance(value, (staticmethod, classmethod, type)):
                continue
            if attribute in private:
                name = private[attribute]
            elif attribute.startswith("_") or attribute in _NOT_METHODS or (cls in _ONLY and attribute not in _ONLY[cls]):
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
    lines.append("")
    for family, members in _families().items():
        built = members - set(NOT_YET)
        exercised = built & set(covered)
        missing = sorted(built - set(covered) - set(in_failed_tests))
        lines.append(f"{family}: {len(exercised)} of {len(built)} client methods exercised by passing tests")
        if missing:
            lines.append(f"{family} not exercised: " + ", ".join(missing))
        not_yet = sorted(members & set(NOT_YET))
        if not_yet:
            lines.append(f"{family} not yet built on the platform (not tested): "
                         + ", ".join(f"{name} ({NOT_YET[name]})" for name in not_yet)
                         + "; and " + NOT_YET_BEYOND_METHODS)
        elif family == "storage3":
            lines.append(f"{family}: every method is built; not built beyond them: " + NOT_YET_BEYOND_METHODS)
        tested_anyway = sorted(set(NOT_YET) & members & (set(covered) | set(in_failed_tests)))
        if tested_anyway:
            lines.append(f"{family} called although not built yet: " + ", ".join(tested_anyway))
    return lines


def _families() -> dict[str, set[str]]:
    """The known names by client library: supabase-auth, storage3, supabase itself."""
    families: dict[str, set[str]] = {"supabase-auth": set(), "storage3": set(), "realtime": set(), "supabase": set()}
    for name in _known:
        family = ("storage3" if name.startswith("storage.") else "realtime" if name.startswith("realtime.")
                  else "supabase" if name.startswith("supabase.") else "supabase-auth")
        families[family].add(name)
    return {family: names for family, names in families.items() if names}
