"""hookbox driven by the official Svix Python SDK; deliveries checked with `standardwebhooks`.

Each test uses its own application, endpoints and receiver URL, so tests do not depend on each
other. The contract is /work/shared/reference/SVIX-COMPAT.md (what the SDK sends and needs back).
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import datetime, timedelta, timezone

import httpx
import pydantic_core
import pytest
import standardwebhooks
import svix
from svix.api import (
    ApplicationCreateOptions,
    ApplicationListOptions,
    EventTypeDeleteOptions,
    EventTypeListOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageCreateOptions,
    MessageGetOptions,
    MessageListOptions,
    EndpointListOptions,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import (
    ApplicationIn,
    ApplicationPatch,
    BackgroundTaskStatus,
    BackgroundTaskType,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EndpointUpsertIn,
    EventExampleIn,
    EventTypeIn,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageAttemptTriggerType,
    MessageIn,
    MessageStatus,
    MessageStatusText,
    Ordering,
    RecoverIn,
    ReplayIn,
    StatusCodeClass,
)

from conftest import MAX_ATTEMPTS, uniq, wait_until

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def utc(dt: datetime) -> bool:
    return dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


def now() -> datetime:
    return datetime.now(timezone.utc)


def verify(secret: str, req) -> object:
    """Verifies a recorded delivery exactly as a Standard Webhooks receiver would."""
    return standardwebhooks.Webhook(secret).verify(req.body, req.headers)


def make_endpoint(client, app, receiver, **fields):
    url = receiver.url()
    ep = client.endpoint.create(app.id, EndpointIn(url=url, **fields))
    return ep, url


def send(client, app, event_type: str, payload: dict | None = None, **fields):
    return client.message.create(
        app.id, MessageIn(event_type=event_type, payload=payload or {"n": 1}, **fields)
    )


def expect_http_error(status: int, fn, *args, **kwargs) -> HttpError:
    with pytest.raises(HttpError) as info:
        fn(*args, **kwargs)
    assert info.value.status_code == status, (
        f"expected HTTP {status}, got {info.value.status_code}: "
        f"code={info.value.code!r} detail={info.value.detail!r}"
    )
    return info.value


def ids(items) -> list[str]:
    return [x.id for x in items]


def attempts_for(client, app, msg_id, count, endpoint_id=None, final=True):
    """Waits until `count` attempts are recorded for a message (and none is still sending)."""

    def check():
        opts = MessageAttemptListByMsgOptions(endpoint_id=endpoint_id, limit=250)
        data = client.message_attempt.list_by_msg(app.id, msg_id, opts).data
        if len(data) < count:
            return None
        if final and any(a.status in (MessageStatus.PENDING, MessageStatus.SENDING) for a in data):
            return None
        return data

    return wait_until(check, f"{count} attempt(s) for message {msg_id}")


# --------------------------------------------------------------------------------------------
# health, auth, protocol details
# --------------------------------------------------------------------------------------------


def test_health_check_answers_through_the_sdk(client):
    client.health.get()


def test_a_wrong_token_raises_the_sdk_http_error_with_status_401(hookbox):
    bad = svix.Svix("hbx_not-a-real-token", svix.SvixOptions(server_url=hookbox.url))
    err = expect_http_error(401, bad.application.list)
    assert err.code == "authentication_failed"


def test_paths_with_a_trailing_slash_are_answered_directly_without_a_redirect(hookbox):
    for path in ("/api/v1/app", "/api/v1/app/"):
        status, _, body = hookbox.request("GET", path)
        assert status == 200, f"GET {path} -> {status} {body}"
        assert set(body) >= {"data", "iterator", "prevIterator", "done"}


def test_a_repeated_idempotency_key_returns_the_original_application(client):
    key = f"compat-{uniq('key')}"
    opts = ApplicationCreateOptions(idempotency_key=key)
    first = client.application.create(ApplicationIn(name="idempotent"), opts)
    again = client.application.create(ApplicationIn(name="idempotent"), opts)
    assert again.id == first.id


def test_validation_errors_come_back_as_422_with_a_list_of_details(client, app):
    with pytest.raises(HTTPValidationError) as info:
        client.endpoint.create(app.id, EndpointIn(url="not a url"))
    assert info.value.status_code == 422
    assert info.value.detail, "422 body must have a non-empty `detail` list"
    for item in info.value.detail:
        assert isinstance(item.loc, list) and item.msg and item.type


# --------------------------------------------------------------------------------------------
# applications
# --------------------------------------------------------------------------------------------


def test_creating_an_application_returns_id_uid_name_metadata_and_utc_timestamps(client, hookbox):
    uid = uniq("app")
    app = client.application.create(
        ApplicationIn(name="Acme Corp", uid=uid, metadata={"tier": "gold"})
    )
    assert app.id and app.id != uid
    assert app.uid == uid
    assert app.name == "Acme Corp"
    assert app.metadata == {"tier": "gold"}
    assert utc(app.created_at) and utc(app.updated_at)
    assert abs((now() - app.created_at).total_seconds()) < 60
    # On the wire: RFC 3339 with `Z` (SVIX-COMPAT.md, "Datetimes").
    status, _, raw = hookbox.request("GET", f"/api/v1/app/{app.id}")
    assert status == 200
    assert raw["createdAt"].endswith("Z") and raw["updatedAt"].endswith("Z"), raw


def test_creating_an_application_with_a_taken_uid_is_a_409_conflict(client):
    uid = uniq("app")
    client.application.create(ApplicationIn(name="first", uid=uid))
    expect_http_error(409, client.application.create, ApplicationIn(name="second", uid=uid))


def test_get_or_create_creates_once_then_returns_the_existing_application(client):
    uid = uniq("app")
    first = client.application.get_or_create(ApplicationIn(name="original", uid=uid))
    assert first.uid == uid and first.name == "original"
    second = client.application.get_or_create(ApplicationIn(name="ignored", uid=uid))
    assert second.id == first.id
    assert second.name == "original"


def test_listing_applications_pages_forward_with_iterator_and_back_with_prev_iterator(client):
    created = [
        client.application.create(ApplicationIn(name=f"page {i}", uid=uniq("page")))
        for i in range(5)
    ]
    full = client.application.list(ApplicationListOptions(limit=250))
    assert full.done
    all_ids = ids(full.data)
    positions = [all_ids.index(a.id) for a in created]
    assert positions == sorted(positions), "applications are listed oldest first by default"

    pages = []
    iterator = None
    for _ in range(200):
        page = client.application.list(ApplicationListOptions(limit=2, iterator=iterator))
        if page.data:
            pages.append(page)
        if page.done or not page.data:
            break
        iterator = page.iterator
    else:
        pytest.fail("forward pagination never reported done")
    assert [i for p in pages for i in ids(p.data)] == all_ids
    assert all(len(p.data) == 2 for p in pages[:-1])
    for p in pages:
        assert p.iterator == p.data[-1].id
        assert p.prev_iterator == "-" + p.data[0].id

    # Backwards: each page's prev_iterator yields exactly the page before it.
    for k in range(len(pages) - 1, 0, -1):
        back = client.application.list(
            ApplicationListOptions(limit=2, iterator=pages[k].prev_iterator)
        )
        assert ids(back.data) == ids(pages[k - 1].data), f"page {k} -> prev_iterator"
    before_first = client.application.list(
        ApplicationListOptions(limit=2, iterator=pages[0].prev_iterator)
    )
    assert before_first.data == []

    desc = client.application.list(ApplicationListOptions(limit=250, order=Ordering.DESCENDING))
    assert ids(desc.data) == list(reversed(all_ids))


def test_an_application_can_be_fetched_by_id_and_by_uid(client, app):
    by_id = client.application.get(app.id)
    by_uid = client.application.get(app.uid)
    assert by_id.id == by_uid.id == app.id
    assert by_uid.uid == app.uid and by_uid.name == app.name


def test_put_updates_an_existing_application(client, app):
    updated = client.application.upsert(
        app.id, ApplicationIn(name="renamed", uid=app.uid, metadata={"plan": "pro"})
    )
    assert updated.id == app.id
    assert updated.name == "renamed"
    assert updated.metadata == {"plan": "pro"}
    assert updated.updated_at >= app.updated_at
    assert client.application.get(app.id).name == "renamed"


def test_put_on_an_unknown_uid_creates_the_application(client):
    uid = uniq("upsert")
    created = client.application.upsert(uid, ApplicationIn(name="made by put", uid=uid))
    assert created.uid == uid and created.name == "made by put"
    assert client.application.get(uid).id == created.id


def test_patch_changes_only_the_given_application_fields(client):
    uid = uniq("app")
    app = client.application.create(ApplicationIn(name="before", uid=uid, metadata={"a": "1"}))
    patched = client.application.patch(app.id, ApplicationPatch(name="after"))
    assert patched.name == "after"
    assert patched.uid == uid
    assert patched.metadata == {"a": "1"}
    patched = client.application.patch(uid, ApplicationPatch(metadata={"b": "2"}))
    assert patched.name == "after" and patched.metadata == {"b": "2"}


def test_deleting_an_application_makes_it_404(client, app):
    client.application.delete(app.id)
    expect_http_error(404, client.application.get, app.id)
    expect_http_error(404, client.application.get, app.uid)
    expect_http_error(404, client.application.delete, app.id)


def test_a_missing_application_raises_the_sdk_http_error_with_status_404(client):
    err = expect_http_error(404, client.application.get, "app_doesnotexist0000000000")
    assert err.code == "not_found"
    assert err.detail


# --------------------------------------------------------------------------------------------
# event types
# --------------------------------------------------------------------------------------------

SCHEMA = {
    "1": {
        "title": "Order placed",
        "type": "object",
        "properties": {"orderId": {"type": "string"}, "total": {"type": "number"}},
        "required": ["orderId"],
        "examples": [{"orderId": "ord_1", "total": 10}, {"orderId": "ord_2", "total": 99.5}],
    }
}


def event_type_name() -> str:
    return f"order.{uniq('placed')}"


def test_creating_an_event_type_returns_it(client):
    name = event_type_name()
    et = client.event_type.create(
        EventTypeIn(name=name, description="An order was placed", schemas=SCHEMA)
    )
    assert et.name == name
    assert et.description == "An order was placed"
    assert et.deprecated is False
    assert not et.archived
    assert et.schemas == SCHEMA
    assert utc(et.created_at) and utc(et.updated_at)
    # Creating a live event type again is a conflict.
    expect_http_error(409, client.event_type.create, EventTypeIn(name=name, description="again"))


def all_event_type_names(client, limit=250, include_archived=False) -> list:
    """Every event type's name, page after page: whatever the shared server's catalog holds."""
    names, iterator = [], None
    while True:
        page = client.event_type.list(
            EventTypeListOptions(limit=limit, iterator=iterator, include_archived=include_archived)
        )
        names += [e.name for e in page.data]
        if page.done or not page.data:
            return names
        iterator = page.iterator


def test_listing_event_types_returns_them_sorted_by_name_and_pages(client):
    prefix = uniq("list")
    names = [f"{prefix}.{suffix}" for suffix in ("charlie", "alpha", "bravo")]
    for n in names:
        client.event_type.create(EventTypeIn(name=n, description=n))
    listed = all_event_type_names(client)
    ours = [n for n in listed if n.startswith(prefix)]
    assert ours == sorted(names)
    assert listed == sorted(listed), "event types are listed by name"
    # Small pages give the same list.
    assert all_event_type_names(client, limit=2) == listed


def test_an_event_type_can_be_fetched_by_name(client):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="fetch me", schemas=SCHEMA))
    et = client.event_type.get(name)
    assert et.name == name and et.description == "fetch me"
    assert et.schemas == SCHEMA
    expect_http_error(404, client.event_type.get, "no.such.event-type")


def test_put_updates_an_event_type_and_creates_an_unknown_one(client):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="v1"))
    updated = client.event_type.upsert(
        name, EventTypeUpsertIn(description="v2", deprecated=True, schemas=SCHEMA)
    )
    assert updated.name == name
    assert updated.description == "v2" and updated.deprecated is True
    assert client.event_type.get(name).description == "v2"

    fresh = event_type_name()
    made = client.event_type.upsert(fresh, EventTypeUpsertIn(description="made by put"))
    assert made.name == fresh and made.description == "made by put"


def test_patch_changes_only_the_given_event_type_fields(client):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="keep me", schemas=SCHEMA))
    patched = client.event_type.patch(name, EventTypePatch(deprecated=True))
    assert patched.deprecated is True
    assert patched.description == "keep me"
    assert client.event_type.get(name).schemas == SCHEMA


def test_deleting_an_event_type_archives_it(client):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="to archive"))
    client.event_type.delete(name)
    assert client.event_type.get(name).archived is True
    assert name not in all_event_type_names(client)
    assert name in all_event_type_names(client, include_archived=True)


def test_creating_an_archived_event_type_again_unarchives_it(client):
    # svix `EventType.create`: "Create new or unarchive existing event type."
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="to archive"))
    client.event_type.delete(name)
    again = client.event_type.create(EventTypeIn(name=name, description="back"))
    assert again.name == name and not again.archived
    assert again.description == "back"
    assert client.event_type.get(name).archived is False


def test_deleting_an_event_type_with_expunge_removes_it(client):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="to expunge"))
    client.event_type.delete(name, EventTypeDeleteOptions(expunge=True))
    expect_http_error(404, client.event_type.get, name)


# --------------------------------------------------------------------------------------------
# endpoints
# --------------------------------------------------------------------------------------------


def test_creating_an_endpoint_with_filter_types_channels_and_metadata(
    client, hookbox, app, receiver, event_types
):
    uid = uniq("ep")
    url = receiver.url()
    ep = client.endpoint.create(
        app.id,
        EndpointIn(
            url=url,
            uid=uid,
            description="billing hooks",
            event_types=[event_types.created, event_types.paid],
            channels=["project-1"],
            metadata={"team": "billing"},
        ),
    )
    assert ep.id and ep.id != uid
    assert ep.uid == uid
    assert ep.url == url
    assert ep.description == "billing hooks"
    assert set(ep.event_types or []) == {event_types.created, event_types.paid}
    assert ep.channels == ["project-1"]
    assert ep.metadata == {"team": "billing"}
    assert not ep.disabled
    assert utc(ep.created_at) and utc(ep.updated_at)
    # svix 1.x requires `version` (SVIX-COMPAT.md, EndpointOut).
    status, _, raw = hookbox.request("GET", f"/api/v1/app/{app.id}/endpoint/{ep.id}")
    assert status == 200 and raw.get("version") == 1, raw


def test_an_endpoint_filtering_on_an_unknown_event_type_is_rejected_with_422(client, app, receiver):
    with pytest.raises(HTTPValidationError) as info:
        client.endpoint.create(
            app.id, EndpointIn(url=receiver.url(), event_types=["no.such.type"])
        )
    assert info.value.status_code == 422


def test_listing_endpoints_returns_newest_first_and_pages_both_ways(client, app, receiver):
    created = [make_endpoint(client, app, receiver)[0] for _ in range(3)]
    listed = client.endpoint.list(app.id)
    assert ids(listed.data) == list(reversed(ids(created)))
    assert listed.done

    first = client.endpoint.list(app.id, EndpointListOptions(limit=2))
    assert len(first.data) == 2 and not first.done
    second = client.endpoint.list(app.id, EndpointListOptions(limit=2, iterator=first.iterator))
    assert len(second.data) == 1 and second.done
    assert ids(first.data) + ids(second.data) == ids(listed.data)
    back = client.endpoint.list(
        app.id, EndpointListOptions(limit=2, iterator=second.prev_iterator)
    )
    assert ids(back.data) == ids(first.data)

    asc = client.endpoint.list(app.id, EndpointListOptions(order=Ordering.ASCENDING))
    assert ids(asc.data) == ids(created)


def test_an_endpoint_can_be_fetched_by_id_and_by_uid(client, app, receiver):
    ep, url = make_endpoint(client, app, receiver, uid=uniq("ep"))
    by_id = client.endpoint.get(app.id, ep.id)
    by_uid = client.endpoint.get(app.uid, ep.uid)
    assert by_id.id == by_uid.id == ep.id
    assert by_uid.url == url
    expect_http_error(404, client.endpoint.get, app.id, "ep_doesnotexist0000000000")


def test_put_replaces_an_endpoint(client, app, receiver, event_types):
    ep, _ = make_endpoint(client, app, receiver, description="old", channels=["a"])
    new_url = receiver.url()
    updated = client.endpoint.upsert(
        app.id,
        ep.id,
        EndpointUpsertIn(url=new_url, description="replaced", event_types=[event_types.paid]),
    )
    assert updated.id == ep.id
    assert updated.url == new_url
    assert updated.description == "replaced"
    assert updated.event_types == [event_types.paid]
    assert client.endpoint.get(app.id, ep.id).url == new_url


def test_patch_changes_only_the_given_endpoint_fields(client, app, receiver, event_types):
    ep, url = make_endpoint(
        client, app, receiver, description="before", event_types=[event_types.created],
        channels=["c1"], metadata={"k": "v"},
    )
    patched = client.endpoint.patch(app.id, ep.id, EndpointPatch(description="after"))
    assert patched.description == "after"
    assert patched.url == url
    assert patched.event_types == [event_types.created]
    assert patched.channels == ["c1"]
    assert patched.metadata == {"k": "v"}
    disabled = client.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=True))
    assert disabled.disabled is True and disabled.description == "after"


def test_deleting_an_endpoint_makes_it_404(client, app, receiver):
    ep, _ = make_endpoint(client, app, receiver)
    client.endpoint.delete(app.id, ep.id)
    expect_http_error(404, client.endpoint.get, app.id, ep.id)
    assert ep.id not in ids(client.endpoint.list(app.id).data)


def test_the_endpoint_secret_is_a_whsec_key_and_a_supplied_secret_is_kept(client, app, receiver):
    ep, _ = make_endpoint(client, app, receiver)
    key = client.endpoint.get_secret(app.id, ep.id).key
    assert key.startswith("whsec_")
    raw = base64.b64decode(key[len("whsec_"):], validate=True)  # standard base64
    assert len(raw) == 24

    mine = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    ep2, _ = make_endpoint(client, app, receiver, secret=mine)
    assert client.endpoint.get_secret(app.id, ep2.id).key == mine


def test_rotating_the_secret_returns_the_new_key_which_the_endpoint_then_serves(
    client, app, receiver
):
    ep, _ = make_endpoint(client, app, receiver)
    old = client.endpoint.get_secret(app.id, ep.id).key
    rotated = client.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    assert rotated.key.startswith("whsec_") and rotated.key != old
    assert client.endpoint.get_secret(app.id, ep.id).key == rotated.key

    mine = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    chosen = client.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=mine))
    assert chosen.key == mine
    assert client.endpoint.get_secret(app.id, ep.id).key == mine


def test_after_rotation_a_delivery_verifies_with_both_the_old_and_the_new_secret(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    old = client.endpoint.get_secret(app.id, ep.id).key
    new = client.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn()).key
    msg = send(client, app, event_types.created, {"rotated": True})
    (req,) = receiver.wait_for(url)
    assert req.webhook_id == msg.id
    assert verify(old, req) == {"rotated": True}
    assert verify(new, req) == {"rotated": True}
    sigs = req.headers["webhook-signature"].split(" ")
    assert len(sigs) >= 2 and all(s.startswith("v1,") for s in sigs), sigs
    stranger = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        verify(stranger, req)


def test_endpoint_headers_can_be_set_read_patched_and_are_sent_with_deliveries(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    client.endpoint.set_headers(
        app.id, ep.id, EndpointHeadersIn(headers={"X-Compat-One": "1", "X-Compat-Two": "2"})
    )
    got = client.endpoint.get_headers(app.id, ep.id)
    assert {k.lower(): v for k, v in got.headers.items()} == {"x-compat-one": "1",
                                                             "x-compat-two": "2"}
    assert isinstance(got.sensitive, list)

    client.endpoint.patch_headers(
        app.id,
        ep.id,
        EndpointHeadersPatchIn(headers={"X-Compat-Three": "3"}, delete_headers=["X-Compat-One"]),
    )
    got = client.endpoint.get_headers(app.id, ep.id)
    assert {k.lower(): v for k, v in got.headers.items()} == {"x-compat-two": "2",
                                                             "x-compat-three": "3"}

    send(client, app, event_types.created)
    (req,) = receiver.wait_for(url)
    assert req.headers.get("x-compat-two") == "2"
    assert req.headers.get("x-compat-three") == "3"
    assert "x-compat-one" not in req.headers


def test_endpoint_stats_count_successful_and_failed_deliveries(client, app, receiver, event_types):
    ok, ok_url = make_endpoint(client, app, receiver)
    bad, bad_url = make_endpoint(client, app, receiver)
    receiver.set_status(bad_url, 500)
    send(client, app, event_types.created)
    receiver.wait_for(ok_url)

    def ok_stats():
        s = client.endpoint.get_stats(app.id, ok.id)
        return s if s.success == 1 else None

    s = wait_until(ok_stats, "success=1 in the stats of the healthy endpoint")
    assert (s.fail, s.pending, s.sending) == (0, 0, 0)

    def bad_stats():
        s = client.endpoint.get_stats(app.id, bad.id)
        return s if s.fail == 1 and s.pending == 0 and s.sending == 0 else None

    s = wait_until(bad_stats, "fail=1 in the stats of the failing endpoint")
    assert s.success == 0
    assert len(receiver.received(bad_url)) == MAX_ATTEMPTS


def test_send_example_delivers_the_event_types_example_payload(client, app, receiver):
    name = event_type_name()
    client.event_type.create(EventTypeIn(name=name, description="with examples", schemas=SCHEMA))
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    msg = client.endpoint.send_example(app.id, ep.id, EventExampleIn(event_type=name,
                                                                     example_index=1))
    assert msg.id and msg.event_type == name
    (req,) = receiver.wait_for(url)
    assert req.webhook_id == msg.id
    assert verify(secret, req) == SCHEMA["1"]["examples"][1]


def test_recover_resends_failed_messages_to_the_endpoint(client, app, receiver, event_types):
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    receiver.set_status(url, 500)
    since = now() - timedelta(seconds=30)
    msg = send(client, app, event_types.created, {"recover": "me"})
    receiver.wait_for(url, MAX_ATTEMPTS)
    attempts = attempts_for(client, app, msg.id, MAX_ATTEMPTS)
    assert all(a.status == MessageStatus.FAIL for a in attempts)

    receiver.set_status(url, 200)
    out = client.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
    assert out.id
    assert out.task == BackgroundTaskType.ENDPOINT_RECOVER
    assert out.status in (BackgroundTaskStatus.RUNNING, BackgroundTaskStatus.FINISHED)
    reqs = receiver.wait_for(url, MAX_ATTEMPTS + 1)
    assert reqs[-1].webhook_id == msg.id
    assert verify(secret, reqs[-1]) == {"recover": "me"}


def test_replay_missing_delivers_what_a_disabled_endpoint_missed_and_nothing_twice(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    since = now() - timedelta(seconds=30)
    delivered = send(client, app, event_types.created, {"n": 0})
    receiver.wait_for(url)
    client.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=True))
    missed = send(client, app, event_types.created, {"n": 1})
    client.endpoint.patch(app.id, ep.id, EndpointPatch(disabled=False))

    out = client.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=since))
    assert out.id
    assert out.task == BackgroundTaskType.ENDPOINT_REPLAY
    assert out.status in (BackgroundTaskStatus.RUNNING, BackgroundTaskStatus.FINISHED)
    receiver.wait_for(url, where=lambda r: r.webhook_id == missed.id)
    assert len([r for r in receiver.received(url) if r.webhook_id == delivered.id]) == 1


def test_replay_missing_delivers_messages_sent_before_the_endpoint_existed(
    client, app, receiver, event_types
):
    since = now() - timedelta(seconds=30)
    earlier = send(client, app, event_types.created, {"early": True})
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    client.endpoint.replay_missing(app.id, ep.id, ReplayIn(since=since))
    (req,) = receiver.wait_for(url)
    assert req.webhook_id == earlier.id
    assert verify(secret, req) == {"early": True}


# --------------------------------------------------------------------------------------------
# messages
# --------------------------------------------------------------------------------------------

# Key order is not alphabetical, there is non-ASCII text, characters JSON may escape, a float
# and an integer beyond 2^53: a server that re-serialises the payload would change the bytes.
PAYLOAD = {
    "zeta": "last letter first",
    "alpha": {"nested": [1, 2.5, True, None, "x"], "empty": {}},
    "text": 'héllo ☃ "quoted" </script> \\ tab\t',
    "big": 9007199254740993,
    "neg": -42,
}


def test_a_message_is_delivered_byte_for_byte_and_verifies_with_standardwebhooks(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    event_id = uniq("evt")
    message_in = MessageIn(event_type=event_types.paid, payload=PAYLOAD, event_id=event_id)
    expected = pydantic_core.to_json(PAYLOAD)  # the exact bytes the SDK sends as `payload`
    assert expected in message_in.model_dump_json(exclude_unset=True, by_alias=True).encode()

    before = int(time.time())
    msg = client.message.create(app.id, message_in)
    assert msg.id and msg.event_type == event_types.paid and msg.event_id == event_id
    assert utc(msg.timestamp)

    (req,) = receiver.wait_for(url)
    assert req.method == "POST"
    assert req.headers.get("content-type", "").startswith("application/json")
    assert req.webhook_id == msg.id
    assert before - 5 <= int(req.headers["webhook-timestamp"]) <= time.time() + 5
    assert verify(secret, req) == PAYLOAD
    assert req.body == expected, "the delivered body must be the payload bytes as sent"
    # The svix library's own verifier (reads svix-* first, then webhook-*) agrees; it returns
    # None and raises WebhookVerificationError on a mismatch.
    svix.Webhook(secret).verify(req.body, req.headers)


def test_listing_messages_returns_newest_first_with_content_only_when_asked(
    client, app, event_types
):
    sent = [
        send(client, app, event_types.created, {"i": 0}),
        send(client, app, event_types.paid, {"i": 1}),
        send(client, app, event_types.created, {"i": 2}),
    ]
    listed = client.message.list(app.id)
    assert ids(listed.data) == list(reversed(ids(sent)))
    assert all(m.payload == {} for m in listed.data), "SDK 2.x sends with_content=false"

    with_content = client.message.list(app.id, MessageListOptions(with_content=True))
    assert [m.payload for m in with_content.data] == [{"i": 2}, {"i": 1}, {"i": 0}]

    paid = client.message.list(app.id, MessageListOptions(event_types=[event_types.paid]))
    assert ids(paid.data) == [sent[1].id]
    both = client.message.list(
        app.id, MessageListOptions(event_types=[event_types.paid, event_types.created])
    )
    assert len(both.data) == 3

    first = client.message.list(app.id, MessageListOptions(limit=2))
    assert ids(first.data) == [sent[2].id, sent[1].id] and not first.done
    second = client.message.list(app.id, MessageListOptions(limit=2, iterator=first.iterator))
    assert ids(second.data) == [sent[0].id] and second.done


def test_a_message_can_be_fetched_by_id_and_by_event_id(client, app, event_types):
    event_id = uniq("evt")
    msg = send(client, app, event_types.created, {"fetch": 1}, event_id=event_id)
    by_id = client.message.get(app.id, msg.id)
    by_event_id = client.message.get(app.id, event_id)
    assert by_id.id == by_event_id.id == msg.id
    assert by_event_id.event_id == event_id
    assert by_id.payload == {}, "SDK 2.x sends with_content=false"
    full = client.message.get(app.id, event_id, MessageGetOptions(with_content=True))
    assert full.payload == {"fetch": 1}
    expect_http_error(404, client.message.get, app.id, "msg_doesnotexist0000000000")


def test_raw_requests_without_with_content_get_payloads_and_repeated_event_types_filter(
    client, hookbox, app, event_types
):
    # svix 1.x and hand-written clients omit `with_content` (then it is true) and may repeat
    # `event_types` instead of comma-joining it (SVIX-COMPAT.md, "Query").
    created = send(client, app, event_types.created, {"raw": 1})
    paid = send(client, app, event_types.paid, {"raw": 2})
    status, _, body = hookbox.request("GET", f"/api/v1/app/{app.id}/msg/{created.id}")
    assert status == 200 and body["payload"] == {"raw": 1}, body
    status, _, body = hookbox.request("GET", f"/api/v1/app/{app.id}/msg")
    assert status == 200 and [m["payload"] for m in body["data"]] == [{"raw": 2}, {"raw": 1}]
    q = f"event_types={event_types.paid}&event_types={event_types.deleted}"
    status, _, body = hookbox.request("GET", f"/api/v1/app/{app.id}/msg?{q}")
    assert status == 200 and [m["id"] for m in body["data"]] == [paid.id], body


def test_reusing_an_event_id_in_the_same_application_is_a_409_conflict(client, app, event_types):
    event_id = uniq("evt")
    send(client, app, event_types.created, event_id=event_id)
    expect_http_error(409, send, client, app, event_types.created, event_id=event_id)
    other = client.application.create(ApplicationIn(name="other", uid=uniq("app")))
    assert send(client, other, event_types.created, event_id=event_id).event_id == event_id


def test_a_repeated_idempotency_key_returns_the_original_message(client, app, receiver,
                                                                  event_types):
    ep, url = make_endpoint(client, app, receiver)
    opts = MessageCreateOptions(idempotency_key=uniq("idem"))
    m_in = MessageIn(event_type=event_types.created, payload={"once": True})
    first = client.message.create(app.id, m_in, opts)
    again = client.message.create(app.id, m_in, opts)
    assert again.id == first.id
    assert ids(client.message.list(app.id).data) == [first.id]


def test_a_message_with_an_application_body_creates_the_application(client, event_types):
    uid = uniq("auto")
    msg = client.message.create(
        uid,
        MessageIn(event_type=event_types.created, payload={"auto": True},
                  application=ApplicationIn(name="auto-created", uid=uid)),
    )
    assert msg.id
    app = client.application.get(uid)
    assert app.name == "auto-created"
    assert ids(client.message.list(uid).data) == [msg.id]


def test_naive_datetimes_sent_by_the_sdk_are_read_as_utc(client, app, receiver, event_types):
    msg = send(client, app, event_types.created)
    naive_past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5)
    # The SDK sends these as e.g. `after=2024-01-01T00:00:00.123456` (no offset).
    after = client.message.list(app.id, MessageListOptions(after=naive_past))
    assert msg.id in ids(after.data)
    before = client.message.list(app.id, MessageListOptions(before=naive_past))
    assert msg.id not in ids(before.data)
    # Aware datetimes go out as `...+00:00` (URL-encoded `%2B00:00`).
    aware_past = naive_past.replace(tzinfo=timezone.utc)
    assert msg.id in ids(client.message.list(app.id, MessageListOptions(after=aware_past)).data)
    assert msg.id not in ids(
        client.message.list(app.id, MessageListOptions(before=aware_past)).data
    )
    # ...and in bodies: `{"since": "2024-01-01T00:00:00.123456"}`.
    ep, _ = make_endpoint(client, app, receiver)
    client.endpoint.recover(app.id, ep.id, RecoverIn(since=naive_past))


# --------------------------------------------------------------------------------------------
# attempts and delivery behaviour
# --------------------------------------------------------------------------------------------


def test_attempts_can_be_listed_by_endpoint_and_by_message_and_fetched_by_id(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    event_id = uniq("evt")
    msg = send(client, app, event_types.created, {"attempt": 1}, event_id=event_id)
    receiver.wait_for(url)

    def by_endpoint():
        data = client.message_attempt.list_by_endpoint(app.id, ep.id).data
        return data if data and data[0].status == MessageStatus.SUCCESS else None

    (a,) = wait_until(by_endpoint, "a successful attempt listed for the endpoint")
    assert a.id and a.msg_id == msg.id and a.endpoint_id == ep.id
    assert a.url == url
    assert a.response_status_code == 200
    assert a.status == MessageStatus.SUCCESS and a.status_text == MessageStatusText.SUCCESS
    assert a.trigger_type == MessageAttemptTriggerType.SCHEDULED
    assert 0 <= a.response_duration_ms < 5000
    assert utc(a.timestamp)
    assert json.loads(a.response) == {"received": True, "status": 200}

    assert ids(client.message_attempt.list_by_msg(app.id, msg.id).data) == [a.id]
    assert ids(client.message_attempt.list_by_msg(app.id, event_id).data) == [a.id]
    filtered = client.message_attempt.list_by_msg(
        app.id, msg.id, MessageAttemptListByMsgOptions(endpoint_id=ep.id)
    )
    assert ids(filtered.data) == [a.id]

    one = client.message_attempt.get(app.id, msg.id, a.id)
    assert one.id == a.id and one.msg_id == msg.id and one.status == MessageStatus.SUCCESS

    ok = client.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(status=MessageStatus.SUCCESS)
    )
    assert ids(ok.data) == [a.id]
    failed = client.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(status=MessageStatus.FAIL)
    )
    assert failed.data == []
    by_class = client.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(status_code_class=StatusCodeClass.CODE2XX)
    )
    assert ids(by_class.data) == [a.id]
    with_msg = client.message_attempt.list_by_endpoint(
        app.id, ep.id, MessageAttemptListByEndpointOptions(with_msg=True)
    )
    assert with_msg.data[0].msg is not None and with_msg.data[0].msg.id == msg.id


def test_an_endpoints_test_send_is_listed_by_the_sdk_as_a_manual_attempt(
    hookbox, client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    status, _, out = hookbox.request(
        "POST", f"/api/v1/app/{app.id}/endpoint/{ep.id}/test", {"eventType": event_types.created}
    )
    assert status == 200 and out["success"], out
    (a,) = client.message_attempt.list_by_endpoint(app.id, ep.id).data
    assert a.id == out["attemptId"]
    assert a.trigger_type == MessageAttemptTriggerType.MANUAL
    (b,) = client.message_attempt.list_by_msg(app.id, out["msgId"]).data
    assert client.message_attempt.get(app.id, out["msgId"], b.id).id == a.id


def test_resending_a_message_delivers_a_second_attempt_with_the_same_webhook_id(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    msg = send(client, app, event_types.created, {"resend": True})
    (first,) = receiver.wait_for(url)
    attempts_for(client, app, msg.id, 1)

    client.message_attempt.resend(app.id, msg.id, ep.id)
    first, second = receiver.wait_for(url, 2)
    assert first.webhook_id == second.webhook_id == msg.id
    assert second.body == first.body
    assert verify(secret, second) == {"resend": True}

    attempts = attempts_for(client, app, msg.id, 2)
    assert sorted(a.trigger_type for a in attempts) == [
        MessageAttemptTriggerType.SCHEDULED, MessageAttemptTriggerType.MANUAL
    ]
    assert all(a.status == MessageStatus.SUCCESS for a in attempts)


def test_a_failing_receiver_gets_failed_attempts_then_a_retry_that_succeeds(
    client, app, receiver, event_types
):
    ep, url = make_endpoint(client, app, receiver)
    secret = client.endpoint.get_secret(app.id, ep.id).key
    receiver.fail_next(url, MAX_ATTEMPTS - 1, 500)
    msg = send(client, app, event_types.created, {"retry": True})

    reqs = receiver.wait_for(url, MAX_ATTEMPTS)
    assert all(r.webhook_id == msg.id for r in reqs)
    assert all(r.body == reqs[0].body for r in reqs)
    for r in reqs:  # every attempt is signed afresh and verifies
        assert verify(secret, r) == {"retry": True}
    stamps = [int(r.headers["webhook-timestamp"]) for r in reqs]
    assert stamps == sorted(stamps)

    attempts = attempts_for(client, app, msg.id, MAX_ATTEMPTS)
    statuses = sorted((a.status, a.response_status_code) for a in attempts)
    assert statuses == [(MessageStatus.SUCCESS, 200)] + [(MessageStatus.FAIL, 500)] * (
        MAX_ATTEMPTS - 1
    )
    (dest,) = client.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert dest.id == ep.id and dest.status == MessageStatus.SUCCESS


def test_an_endpoint_with_filter_types_receives_only_those_types(
    client, app, receiver, event_types
):
    everything, all_url = make_endpoint(client, app, receiver)
    only_paid, paid_url = make_endpoint(client, app, receiver, event_types=[event_types.paid])
    created = send(client, app, event_types.created, {"t": "created"})
    paid = send(client, app, event_types.paid, {"t": "paid"})

    got_all = receiver.wait_for(all_url, 2)
    assert {r.webhook_id for r in got_all} == {created.id, paid.id}
    receiver.wait_for(paid_url, where=lambda r: r.webhook_id == paid.id)
    # What the filtered endpoint was given (pending included) is fixed at ingest.
    listed = client.message_attempt.list_attempted_messages(app.id, only_paid.id).data
    assert ids(listed) == [paid.id]
    assert [r.webhook_id for r in receiver.received(paid_url)] == [paid.id]


def test_an_endpoint_with_channels_receives_only_messages_on_those_channels(
    client, app, receiver, event_types
):
    everything, all_url = make_endpoint(client, app, receiver)
    project, project_url = make_endpoint(client, app, receiver, channels=["project-7"])
    other = send(client, app, event_types.created, {"c": "other"}, channels=["project-8"])
    mine = send(client, app, event_types.created, {"c": "mine"}, channels=["project-7", "x"])
    none = send(client, app, event_types.created, {"c": "none"})

    got_all = receiver.wait_for(all_url, 3)
    assert {r.webhook_id for r in got_all} == {other.id, mine.id, none.id}
    receiver.wait_for(project_url, where=lambda r: r.webhook_id == mine.id)
    listed = client.message_attempt.list_attempted_messages(app.id, project.id).data
    assert ids(listed) == [mine.id]
    assert [r.webhook_id for r in receiver.received(project_url)] == [mine.id]


def test_attempted_messages_of_an_endpoint_and_attempted_endpoints_of_a_message_are_listed(
    client, app, receiver, event_types
):
    ep1, url1 = make_endpoint(client, app, receiver)
    ep2, url2 = make_endpoint(client, app, receiver)
    msg = send(client, app, event_types.created, {"fanout": 2})
    receiver.wait_for(url1)
    receiver.wait_for(url2)

    def destinations():
        data = client.message_attempt.list_attempted_destinations(app.id, msg.id).data
        done = len(data) == 2 and all(d.status == MessageStatus.SUCCESS for d in data)
        return data if done else None

    dests = wait_until(destinations, "both endpoints listed as successful destinations")
    assert {d.id for d in dests} == {ep1.id, ep2.id}
    assert {d.url for d in dests} == {url1, url2}

    msgs = client.message_attempt.list_attempted_messages(app.id, ep1.id).data
    assert ids(msgs) == [msg.id]
    assert msgs[0].status == MessageStatus.SUCCESS
    assert msgs[0].event_type == event_types.created


def test_a_message_a_payload_filter_left_out_lists_as_canceled_through_the_sdk(
    client, app, receiver, event_types, hookbox
):
    # `filter` is hookbox's own endpoint field: set it beside the SDK.
    ep, url = make_endpoint(client, app, receiver)
    status, _, body = hookbox.request(
        "PATCH", f"/api/v1/app/{app.id}/endpoint/{ep.id}", {"filter": "payload.n > 1"}
    )
    assert status == 200 and body["filter"] == "payload.n > 1", body
    left_out = send(client, app, event_types.created, {"n": 1})
    taken = send(client, app, event_types.created, {"n": 2})
    (got,) = receiver.wait_for(url)
    assert got.webhook_id == taken.id

    # The SDK knows no "filtered" status: it reads the delivery as canceled (not sent).
    (dest,) = client.message_attempt.list_attempted_destinations(app.id, left_out.id).data
    assert dest.id == ep.id and dest.status == MessageStatus.CANCELED

    def both():
        msgs = client.message_attempt.list_attempted_messages(app.id, ep.id).data
        statuses = {m.id: m.status for m in msgs}
        return statuses if statuses.get(taken.id) == MessageStatus.SUCCESS else None

    statuses = wait_until(both, "the message the filter took listed as delivered")
    assert statuses == {left_out.id: MessageStatus.CANCELED, taken.id: MessageStatus.SUCCESS}


# --------------------------------------------------------------------------------------------
# Customer portal (app_portal_access)
# --------------------------------------------------------------------------------------------


def test_app_portal_access_gives_a_link_that_opens_this_application_only(client, app, hookbox):
    from svix.models import AppPortalAccessIn

    other = client.application.create(ApplicationIn(name="someone else", uid=uniq("app")))
    access = client.authentication.app_portal_access(app.id, AppPortalAccessIn(expiry=3600))
    assert access.token and access.url.startswith(hookbox.url + "/portal/open/")
    assert access.url.endswith(access.token)
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(access.url)
        assert page.status_code == 200, page.text
        assert "compat test app" in page.text and "Add Endpoint" in page.text
        assert str(page.url).endswith(f"/portal/apps/{app.id}/webhooks")
        # The same session cannot open another application's pages.
        elsewhere = browser.get(str(page.url).replace(app.id, other.id))
        assert elsewhere.status_code == 404
        assert "someone else" not in elsewhere.text


def test_app_portal_access_by_uid_can_create_the_application(client):
    from svix.models import AppPortalAccessIn

    uid = uniq("portal")
    access = client.authentication.app_portal_access(
        uid, AppPortalAccessIn(application=ApplicationIn(name="made for the portal"), read_only=True)
    )
    assert client.application.get(uid).name == "made for the portal"
    with httpx.Client(follow_redirects=True) as browser:
        page = browser.get(access.url)
        assert page.status_code == 200 and "made for the portal" in page.text
