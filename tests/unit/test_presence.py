"""Presence without a broker: members merged over replicas, counts, state, expiry and limits."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.core.presence import Presence
from bridge.core.presence_local import PresenceLimits
from bridge.errors import RequestError
from schemas.codes import ErrorCode
from tests.recording import RecordingConnection

ROOM = "project:p1"
LIMITS = PresenceLimits(expiry=5.0, state_max_bytes=64, state_per_second=2.0)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replica(name: str, clock: Clock) -> tuple[Presence, list[dict[str, Any]]]:
    """A presence whose outgoing messages are recorded."""
    presence = Presence(name, LIMITS, wall=clock, monotonic=clock)
    sent: list[dict[str, Any]] = []
    presence.publish = sent.append
    return presence, sent


def wire(sender: list[dict[str, Any]], *receivers: Presence) -> None:
    """Deliver what one replica sent to the others, in order, and forget it."""
    for message in sender:
        for receiver in receivers:
            receiver.receive(message)
    sender.clear()


def notices(connection: RecordingConnection, name: str) -> list[dict[str, Any]]:
    """The presence notices of one kind a connection got."""
    return [frame for frame in connection.notices if frame["notice"] == name]


def test_two_tabs_are_one_member_who_leaves_with_the_last_tab() -> None:
    """A user with two connections is one member counting two; it leaves with the last one."""
    presence, _ = replica("a", Clock())
    watcher, tab1, tab2 = (RecordingConnection(name) for name in ("w", "t1", "t2"))
    presence.enter(watcher, ROOM, "bob", None)
    presence.enter(tab1, ROOM, "alice", "Alice")
    presence.enter(tab2, ROOM, "alice", "Alice")
    alice = [member for member in presence.members(ROOM) if member["user_id"] == "alice"]
    assert alice[0]["connections"] == 2
    assert alice[0]["name"] == "Alice"
    presence.leave(tab1, ROOM)
    assert notices(watcher, "presence-left") == []
    presence.remove(tab2)
    assert notices(watcher, "presence-left") == [
        {"notice": "presence-left", "project_id": "p1", "user_id": "alice"}
    ]
    assert [member["user_id"] for member in presence.members(ROOM)] == ["bob"]


def test_members_on_other_replicas_are_merged_and_told() -> None:
    """A user on two replicas is one member with the connections of both; others see it join
    once and leave once."""
    clock = Clock()
    a, sent_a = replica("a", clock)
    b, sent_b = replica("b", clock)
    watcher = RecordingConnection("w")
    b.enter(watcher, ROOM, "bob", None)
    a.enter(RecordingConnection("a1"), ROOM, "alice", None)
    wire(sent_a, b)
    b.enter(RecordingConnection("b1"), ROOM, "alice", None)
    wire(sent_b, a)
    assert [(m["user_id"], m["connections"]) for m in a.members(ROOM)] == [
        ("alice", 2),
        ("bob", 1),
    ]
    assert a.members(ROOM) == b.members(ROOM)
    assert len(notices(watcher, "presence-joined")) == 1


def test_a_silent_replica_expires_and_its_members_leave() -> None:
    """A replica that sends nothing for `expiry` seconds is forgotten: its members leave."""
    clock = Clock()
    a, sent_a = replica("a", clock)
    b, _ = replica("b", clock)
    watcher = RecordingConnection("w")
    b.enter(watcher, ROOM, "bob", None)
    for number in range(3):
        a.enter(RecordingConnection(f"a{number}"), ROOM, f"user{number}", None)
    wire(sent_a, b)
    assert len(b.members(ROOM)) == 4
    clock.now += 4.9
    assert b.expire() == []
    clock.now += 0.2
    assert b.expire() == ["a"]
    assert [member["user_id"] for member in b.members(ROOM)] == ["bob"]
    assert len(notices(watcher, "presence-left")) == 3


def test_a_snapshot_replaces_what_a_replica_held() -> None:
    """A snapshot is the sender's whole presence: members it no longer lists leave."""
    clock = Clock()
    a, sent_a = replica("a", clock)
    b, _ = replica("b", clock)
    one, two = RecordingConnection("1"), RecordingConnection("2")
    a.enter(one, ROOM, "alice", None)
    a.enter(two, ROOM, "carol", None)
    wire(sent_a, b)
    a.publish = lambda _: None  # the change for carol's leaving is lost
    a.remove(two)
    b.receive(a.snapshot())
    assert [member["user_id"] for member in b.members(ROOM)] == ["alice"]


def test_hello_is_answered_with_a_snapshot_and_bye_drops_the_sender() -> None:
    """A starting replica's hello gets the others' snapshots; a replica's bye removes its
    members at once."""
    clock = Clock()
    a, sent_a = replica("a", clock)
    b, _ = replica("b", clock)
    a.enter(RecordingConnection("1"), ROOM, "alice", None)
    sent_a.clear()
    a.receive({"kind": "hello", "replica": "b"})
    wire(sent_a, b)
    assert [member["user_id"] for member in b.members(ROOM)] == ["alice"]
    b.receive({"kind": "bye", "replica": "a"})
    assert b.members(ROOM) == []


def test_state_reaches_members_and_the_newest_wins() -> None:
    """A member's state is told as presence-updated; across replicas the newest state wins."""
    clock = Clock()
    a, sent_a = replica("a", clock)
    b, _ = replica("b", clock)
    watcher, tab = RecordingConnection("w"), RecordingConnection("t")
    a.enter(watcher, ROOM, "bob", None)
    a.enter(tab, ROOM, "alice", None)
    clock.now += 1
    a.set_state(tab, ROOM, {"editing": "step-3"})
    wire(sent_a, b)
    updated = notices(watcher, "presence-updated")
    assert updated[-1]["member"]["state"] == {"editing": "step-3"}
    assert {m["user_id"]: m["state"] for m in b.members(ROOM)}["alice"] == {"editing": "step-3"}


def test_state_limits_refuse_without_changing_anything() -> None:
    """Too large, too frequent, not an object, or not joined: refused with its code."""
    clock = Clock()
    presence, _ = replica("a", clock)
    tab = RecordingConnection("t")
    with pytest.raises(RequestError) as refused:
        presence.set_state(tab, ROOM, {"x": 1})
    assert refused.value.code == ErrorCode.NOT_JOINED
    presence.enter(tab, ROOM, "alice", None)
    with pytest.raises(RequestError) as refused:
        presence.set_state(tab, ROOM, {"x": "y" * 100})
    assert refused.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(RequestError) as refused:
        presence.set_state(tab, ROOM, ["not", "an", "object"])
    assert refused.value.code == ErrorCode.INVALID_PAYLOAD
    presence.set_state(tab, ROOM, {"n": 1})
    presence.set_state(tab, ROOM, {"n": 2})
    with pytest.raises(RequestError) as refused:
        presence.set_state(tab, ROOM, {"n": 3})
    assert refused.value.code == ErrorCode.RATE_LIMITED
    assert presence.members(ROOM)[0]["state"] == {"n": 2}
    clock.now += 0.5
    presence.set_state(tab, ROOM, None)
    assert presence.members(ROOM)[0]["state"] is None


@pytest.mark.parametrize(
    "message",
    [
        {"kind": "snapshot", "replica": "x"},
        {"kind": "change", "replica": "x", "room": "activity-feed", "user": "u", "entry": None},
        {"kind": "change", "replica": "x", "room": ROOM, "user": "u", "entry": {"name": 3}},
        {"kind": "what", "replica": "x"},
    ],
)
def test_malformed_messages_are_refused(message: dict[str, Any]) -> None:
    """A malformed message of another replica raises (to be logged and dropped)."""
    presence, _ = replica("a", Clock())
    with pytest.raises((ValueError, TypeError)):
        presence.receive(message)
    assert presence.members(ROOM) == []


def test_changes_are_gathered_and_told_together_in_order() -> None:
    """With a scheduler, changes wait for one flush and then reach each connection in order."""
    scheduled: list[tuple[float, Any]] = []
    presence = Presence("a", LIMITS, schedule=lambda delay, flush: scheduled.append((delay, flush)))
    watcher = RecordingConnection("w")
    presence.enter(watcher, ROOM, "bob", None)
    presence.enter(RecordingConnection("1"), ROOM, "alice", None)
    presence.enter(RecordingConnection("2"), ROOM, "carol", None)
    assert watcher.notices == []
    assert len(scheduled) == 1
    scheduled[0][1]()
    assert [(n["notice"], n["member"]["user_id"]) for n in watcher.notices] == [
        ("presence-joined", "alice"),
        ("presence-joined", "carol"),
    ]


def test_a_list_replaces_the_changes_not_yet_told() -> None:
    """A connection that got the list is not told, afterwards, the changes the list holds."""
    scheduled: list[Any] = []
    presence = Presence("a", LIMITS, schedule=lambda _, flush: scheduled.append(flush))
    presence.enter(RecordingConnection("1"), ROOM, "alice", None)
    newcomer, other = RecordingConnection("n"), RecordingConnection("o")
    presence.enter(newcomer, ROOM, "bob", None)
    presence.enter(other, ROOM, "carol", None)
    listing = presence.listing(ROOM, newcomer)
    assert [member["user_id"] for member in listing["members"]] == ["alice", "bob", "carol"]
    presence.set_state(other, ROOM, {"editing": "s1"})
    scheduled[0]()
    assert [(n["notice"], n["member"]["user_id"]) for n in newcomer.notices] == [
        ("presence-updated", "carol")
    ]


def test_a_full_room_lists_no_new_user_but_more_tabs_of_listed_ones() -> None:
    """A room listing `max_members` users: a new user's connection is not listed (and its state
    is refused, saying why), a listed user's second tab is, and once a user left a rejoin is."""
    clock = Clock()
    limits = PresenceLimits(expiry=5.0, state_max_bytes=64, state_per_second=2.0, max_members=2)
    presence = Presence("a", limits, wall=clock, monotonic=clock)
    alice, bob, carol, alice_again = (RecordingConnection(n) for n in ("a1", "b", "c", "a2"))
    presence.enter(alice, ROOM, "alice", None)
    presence.enter(bob, ROOM, "bob", None)
    presence.enter(carol, ROOM, "carol", None)
    presence.enter(alice_again, ROOM, "alice", None)
    assert not presence.enter(carol, ROOM, "carol", None)  # joined again: nothing changes
    listed = {m["user_id"]: m["connections"] for m in presence.members(ROOM)}
    assert listed == {"alice": 2, "bob": 1}
    with pytest.raises(RequestError) as refused:
        presence.set_state(carol, ROOM, {"x": 1})
    assert refused.value.code == ErrorCode.NOT_JOINED
    assert "EVENTBRIDGE_PRESENCE_MAX_MEMBERS" in str(refused.value)
    presence.remove(bob)
    presence.leave(carol, ROOM)
    presence.enter(carol, ROOM, "carol", None)
    assert [m["user_id"] for m in presence.members(ROOM)] == ["alice", "carol"]
