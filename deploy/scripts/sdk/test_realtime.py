"""supabase-py's realtime client (PyPI `realtime` 2.34.1, through `supabase.acreate_client`)
against the platform's `/realtime/v1` behind the gateway: join, broadcast (self, ack, HTTP),
replay by sequence number, presence, private channels, database changes under row-level
security, and two projects kept apart.

Only the async client has realtime (the sync one raises NotImplementedError), so each test runs
its own event loop (`run`). Waiting is on events with a generous ceiling; nothing asserts a
duration.
"""

from __future__ import annotations

import asyncio
import os
import secrets

import httpx
import pytest
import supabase

from platform_setup import Platform, Project, strong_password
from support import sql

CEILING = 20.0


def run(coroutine):
    return asyncio.run(coroutine)


def topic(tag: str) -> str:
    return f"sdk-{tag}-{secrets.token_hex(4)}"


async def client(platform: Platform, key: str):
    return await supabase.acreate_client(platform.base_url, key)


class Inbox:
    """What one channel received, with a wait for the n-th item."""

    def __init__(self):
        self.items: list = []
        self.changed = asyncio.Event()

    def add(self, item) -> None:
        self.items.append(item)
        self.changed.set()

    async def wait_for(self, count: int) -> list:
        async def until():
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), CEILING)
        return self.items


async def subscribed(channel) -> None:
    """Subscribes and waits for SUBSCRIBED; fails on an error."""
    states: asyncio.Queue = asyncio.Queue()
    await channel.subscribe(lambda state, error: states.put_nowait((state, error)))
    state, error = await asyncio.wait_for(states.get(), CEILING)
    assert str(state.value if hasattr(state, "value") else state) == "SUBSCRIBED", (state, error)


def user_token(platform: Platform, project: Project) -> str:
    """A new user's access token of the project (sign-up through GoTrue)."""
    return user(platform, project)[0]


def user(platform: Platform, project: Project) -> tuple[str, str]:
    """A new user of the project (sign-up through GoTrue): their access token and id."""
    from supabase_auth import SyncGoTrueClient

    auth = SyncGoTrueClient(url=platform.auth_v1, headers={"apikey": project.publishable, "Authorization": f"Bearer {project.publishable}"})
    try:
        answer = auth.sign_up({"email": f"rt-{secrets.token_hex(6)}@example.com", "password": strong_password()})
        assert answer.session is not None and answer.user is not None
        return answer.session.access_token, answer.user.id
    finally:
        auth.close()


def test_two_clients_broadcast_and_receive(platform: Platform, project_a: Project):
    async def scenario():
        name = topic("bc")
        sender, receiver = await client(platform, project_a.publishable), await client(platform, project_a.publishable)
        got, echoed = Inbox(), Inbox()
        listening = receiver.channel(name)
        listening.on_broadcast("cursor", lambda message: got.add(message))
        await subscribed(listening)
        speaking = sender.channel(name, {"config": {"broadcast": {"self": True, "ack": True}}})
        speaking.on_broadcast("cursor", lambda message: echoed.add(message))
        await subscribed(speaking)
        await speaking.send_broadcast("cursor", {"x": 1})
        await speaking.send_broadcast("cursor", {"x": 2})
        received = await got.wait_for(2)
        assert [item["payload"] for item in received] == [{"x": 1}, {"x": 2}]
        first, second = (int(item["meta"]["id"]) for item in received)
        assert second == first + 1
        # self: true sends the sender its own messages too.
        assert [item["payload"] for item in await echoed.wait_for(2)] == [{"x": 1}, {"x": 2}]
        await sender.remove_all_channels()
        await receiver.remove_all_channels()

    run(scenario())


def test_http_send_reaches_subscribers(platform: Platform, project_a: Project):
    async def scenario():
        name = topic("http") + "/with slash"
        receiver = await client(platform, project_a.publishable)
        got = Inbox()
        channel = receiver.channel(name)
        channel.on_broadcast("*", lambda message: got.add(message))
        await subscribed(channel)
        sender = await client(platform, project_a.publishable)
        await sender.channel(name).http_send("note", {"text": "over HTTP"})
        [message] = await got.wait_for(1)
        assert message["event"] == "note" and message["payload"] == {"text": "over HTTP"}
        await receiver.remove_all_channels()

    run(scenario())


def test_replay_after_reconnect(platform: Platform, project_a: Project):
    async def scenario():
        name = topic("replay")
        first = await client(platform, project_a.publishable)
        got = Inbox()
        channel = first.channel(name)
        channel.on_broadcast("tick", lambda message: got.add(message))
        await subscribed(channel)
        with httpx.Client(base_url=platform.base_url, headers={"apikey": project_a.publishable}, timeout=30) as http:
            send = lambda n: http.post("/realtime/v1/api/broadcast", json={"messages": [{"topic": name, "event": "tick", "payload": {"n": n}}]})
            assert send(1).status_code == 202
            [seen] = await got.wait_for(1)
            last_seq = int(seen["meta"]["id"])
            await first.remove_all_channels()
            # Missed while away.
            assert send(2).status_code == 202 and send(3).status_code == 202
        again = await client(platform, project_a.publishable)
        replayed = Inbox()
        rejoined = again.channel(name, {"config": {"broadcast": {"replay": {"after_seq": last_seq}}}})
        rejoined.on_broadcast("tick", lambda message: replayed.add(message))
        await subscribed(rejoined)
        items = await replayed.wait_for(2)
        assert [item["payload"]["n"] for item in items] == [2, 3]
        assert all(item["meta"]["replayed"] for item in items)
        assert [int(item["meta"]["id"]) for item in items] == [last_seq + 1, last_seq + 2]
        await again.remove_all_channels()

    run(scenario())


def test_presence_join_and_leave(platform: Platform, project_a: Project):
    async def scenario():
        name = topic("presence")
        watcher, walker = await client(platform, project_a.publishable), await client(platform, project_a.publishable)
        joins, leaves = Inbox(), Inbox()
        watching = watcher.channel(name)
        watching.on_presence_join(lambda key, current, new: joins.add((key, new)))
        watching.on_presence_leave(lambda key, current, left: leaves.add((key, left)))
        await subscribed(watching)
        walking = walker.channel(name, {"config": {"presence": {"key": "walker", "enabled": True}}})
        walking.on_presence_sync(lambda: None)
        await subscribed(walking)
        await walking.track({"status": "online"})
        [(key, new)] = await joins.wait_for(1)
        assert key == "walker" and new[0]["status"] == "online"
        assert watching.presence_state()["walker"][0]["status"] == "online"
        await walking.untrack()
        [(key, _)] = await leaves.wait_for(1)
        assert key == "walker" and "walker" not in watching.presence_state()
        # A closed socket leaves too.
        await walking.track({"status": "back"})
        await joins.wait_for(2)
        await walker.realtime.close()
        await leaves.wait_for(2)
        assert "walker" not in watching.presence_state()
        await watcher.remove_all_channels()

    run(scenario())


def test_private_channels_need_a_user(platform: Platform, project_a: Project):
    async def scenario():
        name = topic("private")
        anonymous = await client(platform, project_a.publishable)
        states: asyncio.Queue = asyncio.Queue()
        refused = anonymous.channel(name, {"config": {"private": True}})
        await refused.subscribe(lambda state, error: states.put_nowait((state, error)))
        state, error = await asyncio.wait_for(states.get(), CEILING)
        assert "CHANNEL_ERROR" in str(state) and "Unauthorized" in str(error)
        await anonymous.remove_all_channels()

        signed_in = await client(platform, project_a.publishable)
        await signed_in.realtime.set_auth(user_token(platform, project_a))
        got = Inbox()
        allowed = signed_in.channel(name, {"config": {"private": True, "broadcast": {"self": True}}})
        allowed.on_broadcast("*", lambda message: got.add(message))
        await subscribed(allowed)
        await allowed.send_broadcast("secret", {"ok": True})
        [message] = await got.wait_for(1)
        assert message["payload"] == {"ok": True}
        await signed_in.remove_all_channels()

    run(scenario())


def test_projects_are_kept_apart(platform: Platform, project_a: Project, project_b: Project):
    async def scenario():
        name = topic("apart")
        a, b = await client(platform, project_a.publishable), await client(platform, project_b.publishable)
        got_a, got_b = Inbox(), Inbox()
        channel_a, channel_b = a.channel(name), b.channel(name)
        channel_a.on_broadcast("*", lambda message: got_a.add(message))
        channel_b.on_broadcast("*", lambda message: got_b.add(message))
        channel_b.on_presence_join(lambda key, current, new: got_b.add(("presence", key)))
        await subscribed(channel_a)
        await subscribed(channel_b)
        sender = await client(platform, project_a.publishable)
        speaking = sender.channel(name, {"config": {"presence": {"key": "a-user", "enabled": True}}})
        await subscribed(speaking)
        await speaking.track({"from": "a"})
        await speaking.send_broadcast("hello", {"from": "a"})
        await got_a.wait_for(1)
        # B's channel of the same name sees nothing of A: then a message of B's own arrives alone.
        with httpx.Client(base_url=platform.base_url, headers={"apikey": project_b.publishable}, timeout=30) as http:
            assert http.post("/realtime/v1/api/broadcast", json={"messages": [{"topic": name, "event": "b", "payload": {}}]}).status_code == 202
        [only] = await got_b.wait_for(1)
        assert only["event"] == "b" and len(got_b.items) == 1
        for c in (a, b, sender):
            await c.remove_all_channels()

    run(scenario())


def as_project(platform: Platform, schema: str, statements: str) -> None:
    """SQL as the project's role, as a developer's migration would run it: the platform's role
    becomes it for one transaction only."""
    sql(platform, f"BEGIN; GRANT {schema} TO CURRENT_USER; SET LOCAL ROLE {schema}; {statements} RESET ROLE; "
                  f"REVOKE {schema} FROM CURRENT_USER; COMMIT;")


def test_postgres_changes_with_row_level_security(platform: Platform, project_a: Project):
    """A table of the project, readable by each user for their own rows only (row-level
    security), opted into realtime's changes through its API: supabase-py's
    `on_postgres_changes` with a filter gets a user's own inserts and never another's."""
    schema = f"tenant_{project_a.slug}"
    table = f"notes_{secrets.token_hex(3)}"
    as_project(platform, schema, f"""CREATE TABLE {schema}.{table} (id bigint PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL);
        ALTER TABLE {schema}.{table} ENABLE ROW LEVEL SECURITY;
        CREATE POLICY mine ON {schema}.{table} FOR SELECT USING (owner = {schema}.auth_uid());""")
    realtime_api = os.environ["REALTIME_URL"]
    with httpx.Client(base_url=realtime_api, headers={"apikey": project_a.secret}, timeout=30) as http:
        answer = http.put(f"/v1/tenants/{project_a.slug}/realtime/tables/{table}")
        assert answer.status_code == 200 and table in answer.json()["tables"], answer.text
    alice, bob = user(platform, project_a), user(platform, project_a)

    def insert(row_id: int, owner: str, body: str) -> None:
        as_project(platform, schema, f"INSERT INTO {schema}.{table} VALUES ({row_id}, '{owner}', '{body}');")

    async def scenario():
        inboxes = {}
        clients = []
        for name, (token, _) in (("alice", alice), ("bob", bob)):
            c = await client(platform, project_a.publishable)
            await c.realtime.set_auth(token)
            inbox = Inbox()
            channel = c.channel(f"db-{name}")
            channel.on_postgres_changes("INSERT", lambda change, inbox=inbox: inbox.add(change), table=table, filter="body=eq.hi")
            await subscribed(channel)
            inboxes[name] = inbox
            clients.append(c)
        insert(1, alice[1], "hi")
        insert(2, alice[1], "other")
        insert(3, bob[1], "hi")
        [change] = await inboxes["bob"].wait_for(1)
        assert change["data"]["record"]["id"] == 3 and change["data"]["type"] == "INSERT"
        assert change["data"]["schema"] == "public" and change["data"]["table"] == table
        assert [column["name"] for column in change["data"]["columns"]] == ["id", "owner", "body"]
        [mine] = await inboxes["alice"].wait_for(1)
        assert mine["data"]["record"] == {"id": 1, "owner": alice[1], "body": "hi"}
        # A later row of Alice's arrives to her alone: Bob's inbox still holds his one row.
        insert(4, alice[1], "hi")
        await inboxes["alice"].wait_for(2)
        assert [item["data"]["record"]["id"] for item in inboxes["alice"].items] == [1, 4]
        assert [item["data"]["record"]["id"] for item in inboxes["bob"].items] == [3]
        for c in clients:
            await c.remove_all_channels()

    try:
        run(scenario())
    finally:
        as_project(platform, schema, f"DROP TABLE {schema}.{table};")


def test_channel_lifecycle_and_system_messages(platform: Platform, project_a: Project):
    """connect, get_channels, on_system (the "Subscribed to PostgreSQL" confirmation of a
    postgres_changes binding, and a replay gap's notice), unsubscribe, remove_channel."""

    async def scenario():
        c = await client(platform, project_a.publishable)
        await c.realtime.connect()
        name = topic("life")
        with httpx.Client(base_url=platform.base_url, headers={"apikey": project_a.publishable}, timeout=30) as http:
            answer = http.post("/realtime/v1/api/broadcast", json={"messages": [{"topic": name, "event": "e", "payload": {}}]})
            assert answer.status_code == 202
        systems = Inbox()
        # Replaying from a sequence number ahead of the channel: a notice, status ok.
        channel = c.channel(name, {"config": {"broadcast": {"replay": {"after_seq": 1_000_000}}}})
        channel.on_system(lambda payload: systems.add(payload))
        channel.on_postgres_changes("*", lambda change: None, table="no_such_table")
        await subscribed(channel)
        messages = [item.message if hasattr(item, "message") else item["message"] for item in await systems.wait_for(2)]
        assert "Subscribed to PostgreSQL" in messages, messages
        assert any(message.startswith("ReplayAhead:") for message in messages), messages
        assert channel in c.realtime.get_channels()
        await channel.unsubscribe()
        await c.realtime.remove_channel(channel)
        assert channel not in c.realtime.get_channels()
        await c.realtime.close()

    run(scenario())
